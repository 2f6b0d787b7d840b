-- Reconciliation (对账) of the statements against what the DMS paid (dms.rebates): one
-- row per payee, programme and period that either side has, for periods that have ended.
-- status: matched (within reconcile_tolerance yuan), over_paid, under_paid, not_paid (due,
-- nothing paid), not_yet_due, unexplained (paid with nothing earned) -- with the rebate
-- ids, the amounts on both sides and a zh/en reason naming the difference.
with lines as (
    select *
    from {{ ref('fct_incentive_statement_lines') }}
    where period_status = 'closed'
),

as_of as (
    select max(period_end) as as_of_date
    from {{ ref('fct_incentive_statement_lines') }}
    where period_status = 'closed'
),

programmes as (
    select
        programme_id,
        name_zh,
        name_en,
        period
    from {{ ref('stg_config__incentive_programmes') }}
),

paid as (
    select
        payee_type,
        payee_code,
        programme_id,
        period_start,
        round(sum(amount), 2) as paid_amount,
        count(*) as payments,
        string_agg(rebate_id, ',' order by rebate_id) as rebate_ids,
        max(paid_date) as last_paid_date
    from {{ ref('stg_dms__rebates') }}
    group by payee_type, payee_code, programme_id, period_start
),

joined as (
    select
        coalesce(l.payee_type, p.payee_type) as payee_type,
        coalesce(l.payee_code, p.payee_code) as payee_code,
        coalesce(l.programme_id, p.programme_id) as programme_id,
        coalesce(l.period_start, p.period_start) as period_start,
        l.line_id,
        l.pay_due_date,
        coalesce(l.amount_earned, 0) as amount_earned,
        coalesce(l.amount_withheld, 0) as amount_withheld,
        coalesce(l.amount_forfeited, 0) as amount_forfeited,
        coalesce(l.amount_payable, 0) as amount_payable,
        coalesce(p.paid_amount, 0) as paid_amount,
        coalesce(p.payments, 0) as payments,
        p.rebate_ids,
        p.last_paid_date
    from lines as l
    full outer join paid as p
        on
        l.payee_code = p.payee_code
        and l.programme_id = p.programme_id
        and l.period_start = p.period_start
),

classified as (
    select
        j.*,
        round(j.paid_amount - j.amount_payable, 2) as difference,
        case
            when j.line_id is null or (j.amount_earned = 0 and j.paid_amount > 0) then 'unexplained'
            when
                abs(j.paid_amount - j.amount_payable) <= {{ var('reconcile_tolerance') }}
                then 'matched'
            when j.payments = 0 and j.pay_due_date > o.as_of_date then 'not_yet_due'
            when j.payments = 0 then 'not_paid'
            when j.paid_amount > j.amount_payable then 'over_paid'
            else 'under_paid'
        end as status
    from joined as j
    cross join as_of as o
    where j.paid_amount <> 0 or j.amount_payable <> 0 or j.amount_withheld <> 0
)

select
    c.payee_type || '-' || c.payee_code || '-' || c.programme_id || '-'
    || strftime(c.period_start, '%Y%m%d') as reconciliation_id,
    c.payee_type,
    c.payee_code,
    coalesce(st.store_name, d.distributor_name) as payee_name,
    coalesce(st.distributor_code, d.distributor_code) as distributor_code,
    coalesce(st.region, d.region) as region,
    c.programme_id,
    g.name_zh as programme_zh,
    g.name_en as programme_en,
    c.period_start,
    case g.period
        when 'month' then c.period_start
        when 'quarter' then cast(c.period_start + interval 2 month as date)
        else cast(c.period_start + interval 11 month as date)
    end as statement_month,
    c.line_id,
    c.pay_due_date,
    c.amount_earned,
    c.amount_withheld,
    c.amount_forfeited,
    c.amount_payable,
    c.paid_amount,
    cast(c.payments as bigint) as payments,
    c.rebate_ids,
    c.last_paid_date,
    c.difference,
    c.status,
    case c.status
        when 'matched' then '已核对一致'
        when 'not_yet_due' then '未到付款日 (' || cast(c.pay_due_date as varchar) || ')'
        when 'not_paid' then 'DMS 未支付, 应付 ¥' || {{ yuan('c.amount_payable') }}
        when 'unexplained'
            then 'DMS 支付 ¥' || {{ yuan('c.paid_amount') }} || ' ('
                || c.rebate_ids || '), 但规则下本期无应得'
        when 'over_paid'
            then 'DMS 多付 ¥' || {{ yuan('c.difference') }} || ' (已付 ¥'
                || {{ yuan('c.paid_amount') }} || ', 应付 ¥' || {{ yuan('c.amount_payable') }} || ')'
                || case when c.payments > 1 then ', 重复支付 ' || c.payments || ' 笔' else '' end
                || case when c.amount_withheld + c.amount_forfeited > 0
                        then ', 其中 ¥' || {{ yuan('c.amount_withheld + c.amount_forfeited') }}
                            || ' 因预警暂扣或扣除'
                    else ''
                end
        else 'DMS 少付 ¥' || {{ yuan('-c.difference') }} || ' (已付 ¥'
            || {{ yuan('c.paid_amount') }} || ', 应付 ¥' || {{ yuan('c.amount_payable') }} || ')'
    end as reason_zh,
    case c.status
        when 'matched' then 'matches the statement'
        when 'not_yet_due' then 'not due until ' || cast(c.pay_due_date as varchar)
        when 'not_paid' then 'the DMS paid nothing; CNY ' || {{ yuan('c.amount_payable') }} || ' is due'
        when 'unexplained'
            then 'the DMS paid CNY ' || {{ yuan('c.paid_amount') }} || ' ('
                || c.rebate_ids || ') but the rules earn nothing for this period'
        when 'over_paid'
            then 'over-paid by CNY ' || {{ yuan('c.difference') }} || ' (paid CNY '
                || {{ yuan('c.paid_amount') }} || ', payable CNY ' || {{ yuan('c.amount_payable') }} || ')'
                || case when c.payments > 1 then ', ' || c.payments || ' payments' else '' end
                || case when c.amount_withheld + c.amount_forfeited > 0
                        then ', CNY ' || {{ yuan('c.amount_withheld + c.amount_forfeited') }}
                            || ' of it withheld or forfeited on alerts'
                    else ''
                end
        else 'under-paid by CNY ' || {{ yuan('-c.difference') }} || ' (paid CNY '
            || {{ yuan('c.paid_amount') }} || ', payable CNY ' || {{ yuan('c.amount_payable') }} || ')'
    end as reason_en
from classified as c
left join programmes as g on c.programme_id = g.programme_id
left join {{ ref('stg_dms__stores') }} as st
    on c.payee_type = 'store' and c.payee_code = st.store_code
left join {{ ref('dim_distributor') }} as d
    on c.payee_type = 'distributor' and c.payee_code = d.distributor_code
