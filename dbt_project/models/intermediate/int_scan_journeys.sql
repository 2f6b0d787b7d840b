-- Every consumer scan joined to the case its code was activated in (and so to the
-- distributor the case was shipped to), to the nearest city of the scan's position,
-- and to the distance from that position to the nearest store of that distributor.
-- These are the per-scan signals of market order control: a code whose keyed check
-- value fails was never issued (forged); a code in no activated case is unknown to
-- the brand; a scan far outside its distributor's territory is a diversion signal.
with scans as (
    select
        scan_id,
        product_code,
        sku_code,
        batch_no,
        scan_time,
        scan_date,
        lat,
        lon,
        consumer_id,
        {{ code_serial('product_code') }} as serial,
        round(lat, 1) as cell_lat,
        round(lon, 1) as cell_lon
    from {{ ref('stg_code__product_scans') }}
),

cases as (
    select
        case_code,
        sku_code,
        first_serial,
        last_serial,
        distributor_code,
        activation_date
    from {{ ref('stg_code__case_activations') }}
),

journeys as (
    {{ join_case_ranges('scans', 'cases') }}
),

-- reverse geocoding on a 0.1-degree grid: nearest city seat per occupied cell
cells as (
    select distinct
        cell_lat,
        cell_lon
    from scans
    where cell_lat is not null and cell_lon is not null
),

ranked as (
    select
        c.cell_lat,
        c.cell_lon,
        g.city,
        g.province,
        g.region,
        row_number() over (
            partition by c.cell_lat, c.cell_lon
            order by
                (c.cell_lat - g.lat) * (c.cell_lat - g.lat)
                + (c.cell_lon - g.lon) * (c.cell_lon - g.lon) * 0.6
        ) as nearness
    from cells as c
    cross join {{ ref('geo_cities') }} as g
),

nearest as (
    select
        cell_lat,
        cell_lon,
        city,
        province,
        region
    from ranked
    where nearness = 1
),

-- distance from each occupied cell to the nearest store of each distributor seen there
territory as (
    select
        p.distributor_code,
        p.cell_lat,
        p.cell_lon,
        min({{ km_between('p.cell_lat', 'p.cell_lon', 's.lat', 's.lon') }}) as km_to_territory
    from (
        select distinct
            distributor_code,
            cell_lat,
            cell_lon
        from journeys
        where distributor_code is not null and cell_lat is not null
    ) as p
    inner join {{ ref('stg_dms__stores') }} as s
        on p.distributor_code = s.distributor_code
    where s.lat is not null and s.lon is not null
    group by p.distributor_code, p.cell_lat, p.cell_lon
)

select
    j.scan_id,
    j.product_code,
    j.sku_code,
    j.batch_no,
    j.scan_time,
    j.scan_date,
    j.lat,
    j.lon,
    j.consumer_id,
    j.case_code,
    j.distributor_code,
    j.activation_date,
    d.province as distributor_province,
    d.region as distributor_region,
    n.city as scan_city,
    n.province as scan_province,
    n.region as scan_region,
    t.km_to_territory,
    j.case_code is not null as code_known,
    coalesce(bclake_code_signature_ok(j.product_code), false) as signature_ok,
    coalesce(j.scan_date < j.activation_date, false) as before_activation,
    (
        j.case_code is not null
        and n.region is not null
        and n.region <> d.region
    ) as is_cross_region,
    (
        j.case_code is not null
        and n.province is not null
        and n.province <> d.province
        and t.km_to_territory > {{ var('diversion_min_km') }}
    ) as out_of_territory
from journeys as j
left join {{ ref('stg_dms__distributors') }} as d on j.distributor_code = d.distributor_code
left join nearest as n on j.cell_lat = n.cell_lat and j.cell_lon = n.cell_lon
left join territory as t
    on
    j.distributor_code = t.distributor_code
    and j.cell_lat = t.cell_lat
    and j.cell_lon = t.cell_lon
