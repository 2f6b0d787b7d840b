-- Great-circle km between every two DCs (the cities' seats), for the supply plan's
-- transfer costs; null when either city is unknown.
select
    a.warehouse_code as from_warehouse,
    b.warehouse_code as to_warehouse,
    {{ km_between('a.lat', 'a.lon', 'b.lat', 'b.lon') }} as distance_km
from {{ ref('dim_warehouse') }} as a
cross join {{ ref('dim_warehouse') }} as b
where a.warehouse_type = 'DC' and b.warehouse_type = 'DC'
