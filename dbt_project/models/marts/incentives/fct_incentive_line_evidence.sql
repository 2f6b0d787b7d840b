-- The evidence behind every statement line (营销费用全链路追溯): one row per event a
-- programme counts, after its eligibility rules (config/incentives.yaml), with the line
-- it lands on and whether a reward-fraud alert holds it: ok, withheld (open or
-- reopened alert) or forfeited (confirmed or penalised). Events a rule excludes (a
-- failed display, a repeat scan, another distributor's goods, no consent) are not here.
with programmes as (
    select * from {{ ref('stg_config__incentive_programmes') }}
),

events as (
    select * from {{ ref('int_incentive_events') }}
),

holds as (
    -- 1: an open alert withholds the event's reward, 2: a confirmed one forfeits it
    select
        ev.evidence,
        ev.event_id,
        max(ev.alert_id) as alert_id,
        max(case
            when a.status in ('confirmed', 'penalised') then 2
            when a.status in ('open', 'reopened') then 1
            else 0
        end) as hold
    from {{ ref('fct_incentive_fraud_evidence') }} as ev
    inner join {{ ref('fct_incentive_fraud_alerts') }} as a on ev.alert_id = a.alert_id
    where ev.withholds
    group by ev.evidence, ev.event_id
),

counted as (
    select
        p.programme_id,
        e.payee_type,
        e.payee_code,
        e.evidence,
        e.event_id,
        e.event_date,
        e.store_code,
        e.consumer_id,
        e.basis,
        e.score,
        h.alert_id,
        case coalesce(h.hold, 0) when 1 then 'withheld' when 2 then 'forfeited' else 'ok' end
            as hold,
        case p.period
            when 'month' then cast({{ dbt.date_trunc('month', 'e.event_date') }} as date)
            when 'quarter' then cast({{ dbt.date_trunc('quarter', 'e.event_date') }} as date)
            else cast({{ dbt.date_trunc('year', 'e.event_date') }} as date)
        end as period_start
    from programmes as p
    inner join events as e on p.evidence = e.evidence
    left join holds as h on e.evidence = h.evidence and e.event_id = h.event_id
    where
        case p.evidence
            when 'display_pass'
                then coalesce(e.passed, false) and coalesce(e.score, 0) >= coalesce(p.min_score, 0)
            when 'verified_scan'
                then
                    e.first_scan
                    and e.code_valid
                    and (not p.authorised_goods or e.authorised)
                    and (not p.consumer_consent or e.consented)
            when 'new_store_first_order'
                then
                    p.onboarded_within_days is null
                    or (
                        e.onboard_date is not null
                        and {{ dbt.datediff('e.onboard_date', 'e.event_date', 'day') }}
                        <= p.onboarded_within_days
                    )
            else true
        end
)

select
    programme_id || '-' || payee_code || '-' || strftime(period_start, '%Y%m%d') as line_id,
    *
from counted
