-- Product codes scanned more than once, with how far apart and how fast: a unit code
-- is printed once, so many consumers, far-apart places or a speed no traveller can
-- reach mean the code was copied onto fakes (cloned). The same consumer scanning
-- again, or a housemate scanning at the same place, is ordinary and stays below
-- every threshold.
with repeated as (
    select product_code
    from {{ ref('int_scan_journeys') }}
    group by product_code
    having count(*) > 1
),

scans as (
    select
        j.product_code,
        j.scan_id,
        j.scan_time,
        j.consumer_id,
        j.lat,
        j.lon,
        lag(j.scan_time) over (partition by j.product_code order by j.scan_time, j.scan_id)
            as prev_time,
        lag(j.lat) over (partition by j.product_code order by j.scan_time, j.scan_id)
            as prev_lat,
        lag(j.lon) over (partition by j.product_code order by j.scan_time, j.scan_id)
            as prev_lon
    from {{ ref('int_scan_journeys') }} as j
    inner join repeated as r on j.product_code = r.product_code
),

legs as (
    select
        *,
        {{ km_between('prev_lat', 'prev_lon', 'lat', 'lon') }} as leg_km,
        greatest(
            {{ dbt.datediff('prev_time', 'scan_time', 'second') }} / 3600.0, 1.0 / 60
        ) as leg_hours
    from scans
),

codes as (
    select
        product_code,
        count(*) as scans,
        count(distinct consumer_id) as consumers,
        min(scan_time) as first_scan_time,
        max(scan_time) as last_scan_time,
        {{ km_between('min(lat)', 'min(lon)', 'max(lat)', 'max(lon)') }} as spread_km,
        max(case when leg_km > {{ var('clone_min_km') }} then leg_km / leg_hours end)
            as max_kmh
    from legs
    group by product_code
)

select
    *,
    (
        consumers >= {{ var('clone_min_consumers') }}
        or (consumers >= 2 and spread_km > {{ var('clone_min_km') }})
        or coalesce(max_kmh > {{ var('clone_max_kmh') }}, false)
    ) as is_cloned
from codes
