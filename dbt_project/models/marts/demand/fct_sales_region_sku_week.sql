-- Weekly (Monday-start) demand by sales region and SKU: the planners' series, with the
-- signals the forecast learns from. B side: sell-through units, realised price, units
-- stores ordered. C side: consumer scans of the SKU's codes located in the region (an
-- early read of sell-out). Promotions of the week come from fct_promotions_region_sku_week.
with sales as (
    select
        s.region,
        f.sku_code,
        cast({{ dbt.date_trunc('week', 'f.biz_date') }} as date) as week_start,
        sum(f.qty) as qty,
        sum(f.amount) as amount,
        count(distinct f.store_code) as reporting_stores
    from {{ ref('fct_sell_through') }} as f
    inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
    group by 1, 2, 3
),

orders as (
    select
        s.region,
        o.sku_code,
        cast({{ dbt.date_trunc('week', 'o.order_date') }} as date) as week_start,
        sum(o.qty_ordered) as order_units
    from {{ ref('fct_store_orders') }} as o
    inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
    group by 1, 2, 3
),

scans as (
    select
        coalesce(scan_region, distributor_region) as region,
        sku_code,
        cast({{ dbt.date_trunc('week', 'scan_date') }} as date) as week_start,
        count(*) as consumer_scans
    from {{ ref('int_scan_journeys') }}
    where coalesce(scan_region, distributor_region) is not null
    group by 1, 2, 3
)

select
    sa.region,
    sa.sku_code,
    sa.week_start,
    sa.qty,
    sa.amount,
    sa.reporting_stores,
    case when sa.qty > 0 then sa.amount / sa.qty end as avg_price,
    coalesce(o.order_units, 0) as order_units,
    coalesce(sc.consumer_scans, 0) as consumer_scans,
    coalesce(p.promo_days, 0) as promo_days,
    coalesce(p.promo_discount, 0) as promo_discount,
    coalesce(p.promo_stores, 0) as promo_stores
from sales as sa
left join orders as o
    on sa.region = o.region and sa.sku_code = o.sku_code and sa.week_start = o.week_start
left join scans as sc
    on sa.region = sc.region and sa.sku_code = sc.sku_code and sa.week_start = sc.week_start
left join {{ ref('fct_promotions_region_sku_week') }} as p
    on sa.region = p.region and sa.sku_code = p.sku_code and sa.week_start = p.week_start
