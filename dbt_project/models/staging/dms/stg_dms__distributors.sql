-- generated from contracts/dms/distributors.yaml by `bclake contracts --dbt`; do not edit
-- Distributor master from the DMS, one document per distributor.
with deduped as (
    {{ dedup(source('dms', 'distributors'), ['distributor_code']) }}
)

select
    distributor_code,
    distributor_name,
    tier,
    region,
    province,
    city,
    _source_file,
    _ingested_at
from deduped
