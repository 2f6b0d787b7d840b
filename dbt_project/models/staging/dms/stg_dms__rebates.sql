-- generated from contracts/dms/rebates.yaml by `bclake contracts --dbt`; do not edit
-- Incentive payments the DMS made, one row per payee, programme and period (distributor rebates
-- and store rewards); reconciled against the statements the brand's programmes earn.
with deduped as (
    {{ dedup(source('dms', 'rebates'), ['rebate_id']) }}
)

select
    rebate_id,
    payee_type,
    payee_code,
    programme_id,
    period_start,
    paid_date,
    amount,
    _source_file,
    _ingested_at
from deduped
