-- Every consumer scan joined to the case its code was activated in (and so to the
-- distributor the case was shipped to) and to the nearest city of the scan's position.
-- A scan far from its distributor's region is a diversion signal; a code in no
-- activated case is unknown to the brand (forged, or never activated).
with scans as (
    select
        scan_id,
        product_code,
        sku_code,
        scan_date,
        lat,
        lon,
        consumer_id,
        {{ code_serial('product_code') }} as serial
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
        round(lat, 1) as cell_lat,
        round(lon, 1) as cell_lon
    from scans
    where lat is not null and lon is not null
),

ranked as (
    select
        c.cell_lat,
        c.cell_lon,
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
        province,
        region
    from ranked
    where nearness = 1
)

select
    j.scan_id,
    j.product_code,
    j.sku_code,
    j.scan_date,
    j.consumer_id,
    j.case_code,
    j.distributor_code,
    d.region as distributor_region,
    n.province as scan_province,
    n.region as scan_region,
    j.case_code is not null as code_known,
    (
        j.case_code is not null
        and n.region is not null
        and n.region <> d.region
    ) as is_cross_region
from journeys as j
left join {{ ref('stg_dms__distributors') }} as d on j.distributor_code = d.distributor_code
left join nearest as n on round(j.lat, 1) = n.cell_lat and round(j.lon, 1) = n.cell_lon
