-- generated from contracts/dms/display_checks.yaml by `bclake contracts --dbt`; do not edit
-- Monthly display-compliance checks by sales reps.
with deduped as (
    {{ dedup(source('dms', 'display_checks'), ['check_id']) }}
)

select
    check_id,
    store_code,
    check_date,
    compliant,
    score,
    photo_count,
    _source_file,
    _ingested_at
from deduped
