-- What each programme costs per incremental unit (激励单位增量成本), per closed period:
-- units delivered to the payees it paid, against the same period a year earlier, less
-- the growth of the payees of the same kind it did not pay (difference in differences).
-- incremental_units = sum over paid payees with last-year units of
--   (units - units_last_year x control_growth), control_growth = control units / their
--   units a year earlier. Payees a programme pays are selected on the evidence it
--   counts; for a volume programme that is the outcome itself, so its estimate is biased
--   upwards (docs/incentives.md): read it as an upper bound. A period with fewer than
--   effect_min_control_payees unpaid payees (a programme that pays nearly everyone) has
--   no estimate.
with lines as (
    select
        programme_id,
        payee_type,
        payee_code,
        period_start,
        period_end,
        amount_payable
    from {{ ref('fct_incentive_statement_lines') }}
    where period_status = 'closed'
),

periods as (
    select distinct
        programme_id,
        payee_type,
        period_start,
        period_end
    from lines
),

store_months as (
    select
        store_code,
        distributor_code,
        cast({{ dbt.date_trunc('month', 'delivery_date') }} as date) as month_start,
        sum(qty_delivered) as units,
        sum(amount) as amount
    from {{ ref('fct_store_orders') }}
    where qty_delivered > 0 and delivery_date is not null
    group by store_code, distributor_code, cast({{ dbt.date_trunc('month', 'delivery_date') }} as date)
),

payee_months as (
    select
        'store' as payee_type,
        store_code as payee_code,
        month_start,
        units,
        amount
    from store_months
    union all
    select
        'distributor' as payee_type,
        distributor_code as payee_code,
        month_start,
        sum(units) as units,
        sum(amount) as amount
    from store_months
    group by distributor_code, month_start
),

payee_units as (
    select
        p.programme_id,
        p.period_start,
        m.payee_code,
        sum(case when m.month_start between p.period_start and p.period_end then m.units else 0 end)
            as units,
        sum(case when m.month_start between p.period_start and p.period_end then m.amount else 0 end)
            as amount,
        sum(case
            when m.month_start between {{ dbt.dateadd('year', -1, 'p.period_start') }}
                and {{ dbt.dateadd('year', -1, 'p.period_end') }}
                then m.units
            else 0
        end) as units_last_year
    from periods as p
    inner join payee_months as m
        on
        p.payee_type = m.payee_type
        and m.month_start between {{ dbt.dateadd('year', -1, 'p.period_start') }} and p.period_end
    group by p.programme_id, p.period_start, m.payee_code
),

marked as (
    select
        u.*,
        coalesce(l.amount_payable, 0) > 0 as paid
    from payee_units as u
    left join lines as l
        on
        u.programme_id = l.programme_id
        and u.period_start = l.period_start
        and u.payee_code = l.payee_code
),

growth as (
    select
        programme_id,
        period_start,
        sum(units) * 1.0 / nullif(sum(units_last_year), 0) as control_growth,
        count(*) as control_payees
    from marked
    where not paid and units_last_year > 0
    group by programme_id, period_start
    having count(*) >= {{ var('effect_min_control_payees') }}
),

effect as (
    select
        m.programme_id,
        m.period_start,
        count(*) as paid_payees,
        sum(m.units) as paid_units,
        sum(m.amount) * 1.0 / nullif(sum(m.units), 0) as unit_value,
        sum(m.units - m.units_last_year * g.control_growth) as incremental_units
    from marked as m
    inner join growth as g on m.programme_id = g.programme_id and m.period_start = g.period_start
    where m.paid and m.units_last_year > 0
    group by m.programme_id, m.period_start
),

cost as (
    select
        programme_id,
        period_start,
        max(period_end) as period_end,
        sum(amount_payable) as cost
    from lines
    group by programme_id, period_start
)

select
    c.programme_id,
    c.period_start,
    c.period_end,
    round(c.cost, 2) as cost,
    e.paid_payees,
    e.paid_units,
    g.control_payees,
    round(g.control_growth, 4) as control_growth,
    round(e.incremental_units, 1) as incremental_units,
    round(case when e.incremental_units > 0 then c.cost / e.incremental_units end, 4)
        as cost_per_incremental_unit,
    round(e.incremental_units * e.unit_value / nullif(c.cost, 0), 3) as roi
from cost as c
left join effect as e on c.programme_id = e.programme_id and c.period_start = e.period_start
left join growth as g on c.programme_id = g.programme_id and c.period_start = g.period_start
