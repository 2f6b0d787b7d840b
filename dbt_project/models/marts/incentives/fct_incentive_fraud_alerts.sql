-- Reward-fraud alerts (激励作弊预警): one row per alert from fct_incentive_fraud_evidence,
-- with the reward it holds back, a reason in zh and en, and its review status from the
-- same review loop as the market-order alerts (review.alert_decisions): open and
-- reopened alerts withhold their rewards, confirmed and penalised ones forfeit them,
-- dismissed ones release them.
with evidence as (
    select * from {{ ref('fct_incentive_fraud_evidence') }}
),

grouped as (
    select
        alert_id,
        kind,
        max(case when withholds then store_code end) as store_code,
        max(consumer_id) as consumer_id,
        min(period_start) as period_start,
        sum(case when withholds then 1 else 0 end) as events,
        count(distinct case when withholds then cast(event_time as date) end) as days,
        min(event_time) as first_seen,
        max(event_time) as last_seen,
        max(burst_days) as burst_days,
        max(max_burst_scans) as max_burst_scans,
        count(distinct case when withholds then round(lat, 4) || ',' || round(lon, 4) end)
            as positions,
        max(photo_hash) as photo_hash,
        max(origin_check_id) as origin_check_id,
        max(origin_store_code) as origin_store_code
    from evidence
    group by alert_id, kind
),

rates as (
    select
        evidence,
        max(amount) as amount
    from {{ ref('stg_config__incentive_programmes') }}
    where calculation = 'per_event'
    group by evidence
),

scored as (
    select
        g.*,
        s.store_name,
        s.distributor_code,
        s.region,
        s.province,
        o.store_name as origin_store_name,
        round(
            g.events * coalesce(
                case g.kind when 'scan_farming' then sr.amount else dr.amount end, 0
            ),
            2
        ) as reward_at_stake,
        case g.kind
            when 'scan_farming'
                then least(
                        1.0,
                        0.5 + 0.1 * g.burst_days
                        + 0.2 * least(1.0, g.max_burst_scans / (2.0 * {{ var('farming_burst_alone') }}))
                    )
            else 0.9
        end as score
    from grouped as g
    left join {{ ref('stg_dms__stores') }} as s on g.store_code = s.store_code
    left join {{ ref('stg_dms__stores') }} as o on g.origin_store_code = o.store_code
    left join rates as sr on sr.evidence = 'verified_scan'
    left join rates as dr on dr.evidence = 'display_pass'
)

select
    s.alert_id,
    s.kind,
    s.store_code,
    s.store_name,
    s.distributor_code,
    s.region,
    s.province,
    s.consumer_id,
    s.period_start,
    cast(s.events as bigint) as events,
    cast(s.days as bigint) as days,
    cast(s.burst_days as bigint) as burst_days,
    cast(s.max_burst_scans as bigint) as max_burst_scans,
    cast(s.positions as bigint) as positions,
    s.photo_hash,
    s.origin_check_id,
    s.origin_store_code,
    s.origin_store_name,
    s.first_seen,
    s.last_seen,
    s.reward_at_stake,
    round(s.score, 3) as score,
    {{ review_columns('s.events', 'events_at_decision') }},
    case s.kind
        when 'scan_farming'
            then
                '门店 ' || s.store_code || ' ' || coalesce(s.store_name, '') || ': 账号 '
                || s.consumer_id || ' 本月在店内 ' || s.days || ' 天扫码 ' || s.events
                || ' 次, 其中 ' || coalesce(s.burst_days, 0) || ' 天出现 '
                || {{ var('farming_burst_minutes') }} || ' 分钟内 ≥'
                || {{ var('farming_burst_scans') }} || ' 个码的集中扫码 (单次最多 '
                || s.max_burst_scans || ' 个), 疑似店员自扫刷奖励; 暂扣扫码引流奖励 ¥'
                || {{ yuan('s.reward_at_stake') }}
        else
            '门店 ' || s.store_code || ' ' || coalesce(s.store_name, '') || ' 的陈列检查照片与 '
            || s.origin_store_code || ' ' || coalesce(s.origin_store_name, '') || ' 的检查 '
            || s.origin_check_id || ' 相同 (感知哈希 ' || s.photo_hash
            || '), 疑似一图多用; 暂扣陈列返利 ¥' || {{ yuan('s.reward_at_stake') }}
    end as reason_zh,
    case s.kind
        when 'scan_farming'
            then
                'Store ' || s.store_code || ': account ' || s.consumer_id || ' scanned '
                || s.events || ' codes there on ' || s.days || ' days this month, in bursts of >= '
                || {{ var('farming_burst_scans') }} || ' codes within '
                || {{ var('farming_burst_minutes') }} || ' minutes on '
                || coalesce(s.burst_days, 0) || ' days (largest ' || s.max_burst_scans
                || '): staff scanning their own stock for rewards? Scan rewards of CNY '
                || {{ yuan('s.reward_at_stake') }} || ' withheld'
        else
            'Store ' || s.store_code || '''s display photo is the one submitted for '
            || s.origin_store_code || ' in check ' || s.origin_check_id || ' (perceptual hash '
            || s.photo_hash || '): one photo for several stores? Display rebate of CNY '
            || {{ yuan('s.reward_at_stake') }} || ' withheld'
    end as reason_en
from scored as s
left join {{ ref('int_alert_reviews') }} as d on s.alert_id = d.alert_id
