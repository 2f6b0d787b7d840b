-- generated from contracts/dms/stores.yaml by `bclake contracts --dbt`; do not edit
-- Store master from the DMS, one document per store.
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
    has_pos,
    mini_program_active,
    is_partner,
    _source_file,
    _ingested_at
from deduped
