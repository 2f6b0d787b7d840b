-- The as-of date of the replenishment run, one row: the day after the last day of
-- sell-through, the first day the suggestions are for. Forecasts take their last
-- complete week from `last_sell_through_date`.
select
    max(biz_date) as last_sell_through_date,
    max(biz_date) + 1 as as_of
from {{ ref('fct_sell_through') }}
