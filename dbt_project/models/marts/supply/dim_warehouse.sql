-- Brand warehouses and regional DCs with the coordinates of their city (the city's seat,
-- from the reference cities; null when the ERP's city name is not a known city).
with cities as (
    select
        city,
        lat,
        lon,
        row_number() over (partition by city order by adcode) as nth
    from {{ ref('geo_cities') }}
)

select
    w.warehouse_code,
    w.warehouse_name,
    w.warehouse_type,
    w.region,
    w.city,
    c.lat,
    c.lon,
    c.city is not null as city_known
from {{ ref('stg_erp__warehouses') }} as w
left join cities as c on w.city = c.city and c.nth = 1
