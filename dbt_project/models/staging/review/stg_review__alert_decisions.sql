-- generated from contracts/review/alert_decisions.yaml by `bclake contracts --dbt`; do not edit
-- Review decisions on market-order and incentive-fraud alerts, recorded from the dashboard by a
-- reviewer (or sent by another review tool); the latest decision per alert sets its status.
with deduped as (
    {{ dedup(source('review', 'alert_decisions'), ['decision_id']) }}
)

select
    decision_id,
    alert_id,
    decision,
    reason,
    penalty_amount,
    decided_by,
    decided_at,
    evidence_scans,
    decided_date,
    _source_file,
    _ingested_at
from deduped
