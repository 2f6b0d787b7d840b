select
    s.store_code,
    s.store_name,
    s.channel_type,
    s.size_class,
    s.region,
    s.province,
    s.city,
    s.lat,
    s.lon,
    s.distributor_code,
    s.onboard_date,
    s.has_pos
from {{ ref('stg_dms__stores') }} as s
