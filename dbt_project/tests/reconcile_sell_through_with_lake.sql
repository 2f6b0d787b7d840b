-- Mart totals equal lake totals: units and value in fct_sell_through equal those of the
-- lake after key deduplication (the staging view). Returns a row when they differ.
with mart as (
    select count(*) as lines, sum(qty) as qty, sum(amount) as amount from {{ ref('fct_sell_through') }}
),

lake as (
    select count(*) as lines, sum(qty) as qty, sum(amount) as amount
    from {{ ref('stg_dms__sell_through') }}
)

select m.*, l.lines as lake_lines, l.qty as lake_qty, l.amount as lake_amount
from mart as m
cross join lake as l
where m.lines <> l.lines or m.qty <> l.qty or abs(m.amount - l.amount) > 0.01
