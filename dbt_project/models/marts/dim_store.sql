-- One row per store with its distributor, city code and tier and digital capabilities.
select
    s.store_code,
    s.store_name,
    s.channel_type,
    s.size_class,
    s.region,
    s.province,
    s.city,
    g.adcode,
    g.tier as city_tier,
    s.lat,
    s.lon,
    s.distributor_code,
    d.distributor_name,
    s.onboard_date,
    s.has_pos,
    s.mini_program_active,
    s.is_partner
from {{ ref('stg_dms__stores') }} as s
left join {{ ref('stg_dms__distributors') }} as d on s.distributor_code = d.distributor_code
left join {{ ref('geo_cities') }} as g on s.province = g.province and s.city = g.city
