-- The review loop shared by every alert (market order: MO ids, reward fraud: IF ids):
-- one row per reviewed alert with its latest decision (the newest decided_at, then the
-- highest decision_id) and the history of all its decisions. The marts set an alert's
-- status from it: open without a decision, reopened when a dismissed alert's evidence
-- has grown past what the reviewer saw (evidence_scans).
with decisions as (
    select
        *,
        row_number() over (partition by alert_id order by decided_at desc, decision_id desc)
            as recency
    from {{ ref('stg_review__alert_decisions') }}
),

history as (
    select
        alert_id,
        count(*) as decisions,
        string_agg(
            strftime(decided_at, '%Y-%m-%d') || ' ' || decision || ' (' || decided_by || ')',
            '; ' order by decided_at
        ) as decision_history
    from decisions
    group by alert_id
)

select
    d.alert_id,
    d.decision,
    d.decided_at,
    d.decided_by,
    d.reason,
    d.penalty_amount,
    d.evidence_scans,
    h.decisions,
    h.decision_history
from decisions as d
inner join history as h on d.alert_id = h.alert_id
where d.recency = 1
