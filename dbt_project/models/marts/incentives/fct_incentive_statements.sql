-- Monthly statements (月度结算单): one row per payee and statement month, the totals of
-- its statement lines (a quarterly or annual line falls in the month its period ends).
select
    payee_type,
    payee_code,
    max(payee_name) as payee_name,
    max(distributor_code) as distributor_code,
    max(region) as region,
    statement_month,
    count(*) as lines,
    min(period_status) as period_status,
    round(sum(amount_earned), 2) as amount_earned,
    round(sum(amount_withheld), 2) as amount_withheld,
    round(sum(amount_forfeited), 2) as amount_forfeited,
    round(sum(amount_payable), 2) as amount_payable,
    string_agg(programme_id, ',' order by programme_id) as programmes
from {{ ref('fct_incentive_statement_lines') }}
group by payee_type, payee_code, statement_month
