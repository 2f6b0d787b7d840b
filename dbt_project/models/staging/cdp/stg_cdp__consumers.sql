-- generated from contracts/cdp/consumers.yaml by `bclake contracts --dbt`; do not edit
-- Registered consumers with profile and consents (a full snapshot per export). Nested objects are
-- flattened with dotted paths.
with deduped as (
    {{ dedup(source('cdp', 'consumers'), ['consumer_id']) }}
)

select
    consumer_id,
    phone,
    gender,
    birth_year,
    city,
    register_channel,
    register_date,
    consent_marketing,
    consent_profile,
    _source_file,
    _ingested_at
from deduped
