-- generated from contracts/dms/rebates.yaml by `bclake contracts --dbt`; do not edit
-- Quarterly volume rebates to distributors.
with deduped as (
    {{ dedup(source('dms', 'rebates'), ['rebate_id']) }}
)

select
    rebate_id,
    distributor_code,
    quarter,
    settle_date,
    purchase_amount,
    rate,
    rebate_amount,
    _source_file,
    _ingested_at
from deduped
