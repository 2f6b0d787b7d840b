-- Incentive statements (返利结算单), one line per payee, programme and period: the
-- evidence counted under the programme's eligibility rules (config/incentives.yaml), the
-- amount the rules earn, what is withheld pending review (a fraud alert or a diversion
-- finding still open), what is forfeited (confirmed), what is payable, and a zh/en
-- reason naming the evidence and the arithmetic. A period still running is `accruing`;
-- a line is due pay_after_days after its period ends. Amounts in yuan, to the fen.
with programmes as (
    select * from {{ ref('stg_config__incentive_programmes') }}
),

events as (
    select * from {{ ref('int_incentive_events') }}
),

as_of as (
    -- the last day the data covers: event dates, not delivery dates (which lie ahead)
    select max(event_date) as as_of_date
    from events
    where evidence in ('verified_scan', 'display_pass', 'distributor_purchases')
),

counted as (
    select
        programme_id,
        payee_type,
        payee_code,
        period_start,
        basis,
        case hold when 'withheld' then 1 when 'forfeited' then 2 else 0 end as hold
    from {{ ref('fct_incentive_line_evidence') }}
),

lines as (
    select
        programme_id,
        payee_type,
        payee_code,
        period_start,
        count(*) as events,
        sum(case when hold = 0 then 1 else 0 end) as events_ok,
        sum(case when hold = 1 then 1 else 0 end) as events_withheld,
        sum(case when hold = 2 then 1 else 0 end) as events_forfeited,
        round(coalesce(sum(basis), 0), 2) as basis
    from counted
    group by programme_id, payee_type, payee_code, period_start
),

tiered as (
    select
        l.programme_id,
        l.payee_code,
        l.period_start,
        max(case when l.basis >= t.tier_from then t.tier end) as tier_reached,
        sum(
            greatest(0, least(l.basis, coalesce(t.tier_to, l.basis)) - t.tier_from) * t.rate
        ) as marginal_amount
    from lines as l
    inner join {{ ref('stg_config__incentive_tiers') }} as t on l.programme_id = t.programme_id
    group by l.programme_id, l.payee_code, l.period_start
),

findings as (
    -- diversion (窜货) findings on a distributor: 1 open, 2 confirmed; dismissed ones clear
    select
        distributor_code,
        week_start,
        max(case
            when status in ('confirmed', 'penalised') then 2
            when status in ('open', 'reopened') then 1
            else 0
        end) as level,
        count(*) as alerts
    from {{ ref('fct_market_order_alerts') }}
    where kind = 'diversion'
    group by distributor_code, week_start
),

framed as (
    select
        l.*,
        p.name_zh,
        p.name_en,
        p.evidence,
        p.period,
        p.calculation,
        p.amount as unit_amount,
        p.max_events,
        p.tier_mode,
        p.cap,
        p.diversion_factor,
        p.pay_after_days,
        cast(case p.period
            when 'month' then l.period_start + interval 1 month
            when 'quarter' then l.period_start + interval 3 month
            else l.period_start + interval 1 year
        end - interval 1 day as date) as period_end,
        t.tier_reached,
        tr.rate as tier_rate,
        case
            when p.calculation <> 'tiered_rate' or l.basis <= 0 then 0
            when p.tier_mode = 'marginal' then coalesce(t.marginal_amount, 0)
            else l.basis * coalesce(tr.rate, 0)
        end as tier_amount
    from lines as l
    inner join programmes as p on l.programme_id = p.programme_id
    left join tiered as t
        on
        l.programme_id = t.programme_id
        and l.payee_code = t.payee_code
        and l.period_start = t.period_start
    left join {{ ref('stg_config__incentive_tiers') }} as tr
        on l.programme_id = tr.programme_id and t.tier_reached = tr.tier
),

with_findings as (
    select
        f.*,
        coalesce(d.level, 0) as diversion_level,
        coalesce(d.alerts, 0) as diversion_alerts
    from framed as f
    left join (
        select
            fr.programme_id,
            fr.payee_code,
            fr.period_start,
            max(x.level) as level,
            sum(case when x.level > 0 then x.alerts else 0 end) as alerts
        from framed as fr
        inner join findings as x
            on
            fr.payee_code = x.distributor_code
            and x.week_start between fr.period_start and fr.period_end
        where fr.diversion_factor is not null
        group by fr.programme_id, fr.payee_code, fr.period_start
    ) as d
        on
        f.programme_id = d.programme_id
        and f.payee_code = d.payee_code
        and f.period_start = d.period_start
),

amounts as (
    select
        w.*,
        -- per_event: capped(n) = min(min(n, max_events) x amount, cap)
        least(
            least(w.events, coalesce(w.max_events, w.events)) * coalesce(w.unit_amount, 0),
            coalesce(w.cap, 1e18)
        ) as pe_all,
        least(
            least(w.events_ok + w.events_withheld, coalesce(w.max_events, w.events))
            * coalesce(w.unit_amount, 0),
            coalesce(w.cap, 1e18)
        ) as pe_kept,
        least(
            least(w.events_ok, coalesce(w.max_events, w.events)) * coalesce(w.unit_amount, 0),
            coalesce(w.cap, 1e18)
        ) as pe_ok,
        least(w.tier_amount, coalesce(w.cap, 1e18)) as tr_full,
        least(w.tier_amount * coalesce(w.diversion_factor, 1), coalesce(w.cap, 1e18))
            as tr_reduced
    from with_findings as w
),

settled as (
    select
        a.*,
        round(case when a.calculation = 'per_event' then a.pe_all else a.tr_full end, 2)
            as amount_earned,
        round(case
            when a.calculation = 'per_event' then a.pe_kept - a.pe_ok
            when a.diversion_level = 1 and a.diversion_factor is not null
                then a.tr_full - a.tr_reduced
            else 0
        end, 2) as amount_withheld,
        round(case
            when a.calculation = 'per_event' then a.pe_all - a.pe_kept
            when a.diversion_level = 2 and a.diversion_factor is not null
                then a.tr_full - a.tr_reduced
            else 0
        end, 2) as amount_forfeited
    from amounts as a
)

select
    s.programme_id || '-' || s.payee_code || '-' || strftime(s.period_start, '%Y%m%d') as line_id,
    s.programme_id,
    s.name_zh as programme_zh,
    s.name_en as programme_en,
    s.payee_type,
    s.payee_code,
    coalesce(st.store_name, d.distributor_name) as payee_name,
    coalesce(st.distributor_code, s.payee_code) as distributor_code,
    coalesce(st.region, d.region) as region,
    s.evidence,
    s.period,
    s.period_start,
    s.period_end,
    cast({{ dbt.date_trunc('month', 's.period_end') }} as date) as statement_month,
    cast(s.period_end + to_days(s.pay_after_days) as date) as pay_due_date,
    case when s.period_end > o.as_of_date then 'accruing' else 'closed' end as period_status,
    cast(s.events as bigint) as events,
    cast(s.events_ok as bigint) as events_ok,
    cast(s.events_withheld as bigint) as events_withheld,
    cast(s.events_forfeited as bigint) as events_forfeited,
    s.basis,
    s.tier_reached,
    s.tier_rate,
    cast(s.diversion_alerts as bigint) as diversion_alerts,
    s.amount_earned,
    s.amount_withheld,
    s.amount_forfeited,
    round(s.amount_earned - s.amount_withheld - s.amount_forfeited, 2) as amount_payable,
    case
        when s.calculation = 'per_event'
            then
                s.name_zh || ': ' || s.events || case s.evidence
                    when 'display_pass' then ' 次陈列达标'
                    when 'verified_scan' then ' 次有效扫码'
                    else ' 家新开门店'
                end || ' × ¥' || {{ yuan('s.unit_amount') }}
                || case when s.max_events is not null then ' (每期最多 ' || s.max_events || ' 条)' else '' end
                || case when s.cap is not null then ' (封顶 ¥' || {{ yuan('s.cap') }} || ')' else '' end
                || ' = ¥' || {{ yuan('s.amount_earned') }}
                || case when s.events_withheld > 0
                        then '; ' || s.events_withheld || ' 条因作弊预警待审核, 暂扣 ¥'
                            || {{ yuan('s.amount_withheld') }}
                    else ''
                end
                || case when s.events_forfeited > 0
                        then '; ' || s.events_forfeited || ' 条经审核确认作弊, 扣除 ¥'
                            || {{ yuan('s.amount_forfeited') }}
                    else ''
                end
        else
            s.name_zh || ': 基数 ¥' || {{ yuan('s.basis') }}
            || case when s.tier_reached is null then ', 未达最低阶梯'
                else ', 达到第 ' || s.tier_reached || ' 档 (' || {{ percent('s.tier_rate') }}
                    || '%' || case when s.tier_mode = 'marginal' then ', 分段累进' else '' end || ')'
            end
            || ' = ¥' || {{ yuan('s.amount_earned') }}
            || case when s.cap is not null then ' (封顶 ¥' || {{ yuan('s.cap') }} || ')' else '' end
            || case when s.amount_withheld > 0
                    then '; 本期有 ' || s.diversion_alerts || ' 条窜货预警待审核, 按合规系数 '
                        || cast(s.diversion_factor as varchar) || ' 暂扣 ¥' || {{ yuan('s.amount_withheld') }}
                else ''
            end
            || case when s.amount_forfeited > 0
                    then '; 窜货经审核确认, 按合规系数 ' || cast(s.diversion_factor as varchar) || ' 扣除 ¥'
                        || {{ yuan('s.amount_forfeited') }}
                else ''
            end
    end as reason_zh,
    case
        when s.calculation = 'per_event'
            then
                s.name_en || ': ' || s.events || case s.evidence
                    when 'display_pass' then ' passed display checks'
                    when 'verified_scan' then ' verified scans'
                    else ' new stores'
                end || ' x CNY ' || {{ yuan('s.unit_amount') }}
                || case when s.max_events is not null then ' (at most ' || s.max_events || ' a period)' else '' end
                || case when s.cap is not null then ' (cap CNY ' || {{ yuan('s.cap') }} || ')' else '' end
                || ' = CNY ' || {{ yuan('s.amount_earned') }}
                || case when s.events_withheld > 0
                        then '; ' || s.events_withheld || ' under a fraud alert pending review, CNY '
                            || {{ yuan('s.amount_withheld') }} || ' withheld'
                    else ''
                end
                || case when s.events_forfeited > 0
                        then '; ' || s.events_forfeited || ' confirmed as fraud, CNY '
                            || {{ yuan('s.amount_forfeited') }} || ' forfeited'
                    else ''
                end
        else
            s.name_en || ': basis CNY ' || {{ yuan('s.basis') }}
            || case when s.tier_reached is null then ', below the first tier'
                else ', tier ' || s.tier_reached || ' (' || {{ percent('s.tier_rate') }}
                    || '%' || case when s.tier_mode = 'marginal' then ', marginal' else '' end || ')'
            end
            || ' = CNY ' || {{ yuan('s.amount_earned') }}
            || case when s.cap is not null then ' (cap CNY ' || {{ yuan('s.cap') }} || ')' else '' end
            || case when s.amount_withheld > 0
                    then '; ' || s.diversion_alerts || ' diversion alerts pending review: CNY '
                        || {{ yuan('s.amount_withheld') }} || ' withheld at compliance factor '
                        || cast(s.diversion_factor as varchar)
                else ''
            end
            || case when s.amount_forfeited > 0
                    then '; diversion confirmed: CNY ' || {{ yuan('s.amount_forfeited') }}
                        || ' forfeited at compliance factor ' || cast(s.diversion_factor as varchar)
                else ''
            end
    end as reason_en
from settled as s
cross join as_of as o
left join {{ ref('stg_dms__stores') }} as st
    on s.payee_type = 'store' and s.payee_code = st.store_code
left join {{ ref('dim_distributor') }} as d
    on s.payee_type = 'distributor' and s.payee_code = d.distributor_code
