-- The plan's KPIs in one long table: kpi x grain x period x scope.
with monthly_sales as (
    select
        s.region,
        cast({{ dbt.date_trunc('month', 'f.biz_date') }} as date) as period_start,
        sum(f.amount) as amount
    from {{ ref('fct_sell_through') }} as f
    inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
    group by s.region, cast({{ dbt.date_trunc('month', 'f.biz_date') }} as date)
),

monthly_delivered as (
    select
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as period_start,
        sum(qty_delivered) as units
    from {{ ref('fct_store_orders') }}
    group by cast({{ dbt.date_trunc('month', 'order_date') }} as date)
),

monthly_scans as (
    select
        cast({{ dbt.date_trunc('month', 'scan_date') }} as date) as period_start,
        count(*) as scans
    from {{ ref('fct_product_scans') }}
    group by cast({{ dbt.date_trunc('month', 'scan_date') }} as date)
)

select
    'sell_through_amount' as kpi,
    'month' as grain,
    period_start,
    'region' as scope_type,
    region as scope_id,
    cast(amount as double) as value
from monthly_sales

union all

-- 扫码率: units scanned by consumers per unit delivered to stores
select
    'scan_rate' as kpi,
    'month' as grain,
    d.period_start,
    'company' as scope_type,
    'all' as scope_id,
    cast(coalesce(sc.scans, 0) as double) / nullif(d.units, 0) as value
from monthly_delivered as d
left join monthly_scans as sc on d.period_start = sc.period_start
