-- generated from contracts/dms/display_checks.yaml by `bclake contracts --dbt`; do not edit
-- Monthly display-compliance checks by sales reps; photo_hash is the 64-bit perceptual hash (16
-- hex digits) the DMS computes of the check's main photo.
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
    photo_hash,
    _source_file,
    _ingested_at
from deduped
