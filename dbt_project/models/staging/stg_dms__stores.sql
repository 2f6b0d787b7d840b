with deduped as (
    {{ dedup(source('dms', 'stores'), ['store_code']) }}
)

select
    store_code,
    store_name,
    channel_type,
    size_class,
    region,
    province,
    city,
    lat,
    lon,
    distributor_code,
    onboard_date,
    has_pos
from deduped
