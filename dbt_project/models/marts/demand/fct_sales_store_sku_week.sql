{{ config(materialized='table') }}
-- Weekly (Monday-start) sell-through by store and SKU, the replenishment engine's demand
-- series, with the units the store ordered that week (a B-side signal for stores whose
-- sell-through arrives late) and the days a signed-up promotion ran (known in advance).
-- Weeks without sales are absent: a series is dense only from its first sale.
with sales as (
    select
        store_code,
        sku_code,
        cast({{ dbt.date_trunc('week', 'biz_date') }} as date) as week_start,
        sum(qty) as qty
    from {{ ref('fct_sell_through') }}
    group by 1, 2, 3
),

orders as (
    select
        store_code,
        sku_code,
        cast({{ dbt.date_trunc('week', 'order_date') }} as date) as week_start,
        sum(qty_ordered) as order_units
    from {{ ref('fct_store_orders') }}
    group by 1, 2, 3
)

select
    sa.store_code,
    sa.sku_code,
    sa.week_start,
    sa.qty,
    coalesce(o.order_units, 0) as order_units,
    coalesce(p.promo_days, 0) as promo_days
from sales as sa
left join orders as o
    on sa.store_code = o.store_code and sa.sku_code = o.sku_code and sa.week_start = o.week_start
left join {{ ref('fct_promotions_store_sku_week') }} as p
    on sa.store_code = p.store_code and sa.sku_code = p.sku_code and sa.week_start = p.week_start
