{#- An alert's review columns, from int_alert_reviews joined as `d`: its status (open
    without a decision; reopened when a dismissed alert's evidence `evidence_count` has
    grown past what the reviewer saw), the latest decision and the decision history. -#}
{% macro review_columns(evidence_count, at_decision) -%}
    case
        when d.decision is null then 'open'
        when d.decision = 'dismissed' and {{ evidence_count }} > d.evidence_scans then 'reopened'
        else d.decision
    end as status,
    d.decision as last_decision,
    d.decided_at,
    d.decided_by,
    d.reason as decision_reason,
    d.penalty_amount,
    d.evidence_scans as {{ at_decision }},
    coalesce(d.decisions, 0) as decisions,
    d.decision_history
{%- endmacro %}
