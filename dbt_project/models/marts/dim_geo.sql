-- Prefecture-level cities of the 31 mainland provinces with their seat coordinates,
-- the brand region of each province, and how many of the brand's stores are there.
with stores as (
    select
        province,
        city,
        count(*) as stores
    from {{ ref('stg_dms__stores') }}
    group by province, city
)

select
    g.adcode,
    g.province,
    g.city,
    g.region,
    g.lat,
    g.lon,
    g.tier,
    coalesce(s.stores, 0) as stores
from {{ ref('geo_cities') }} as g
left join stores as s on g.province = s.province and g.city = s.city
