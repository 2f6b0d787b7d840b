-- Weekly (Monday-start) sell-through by sales region and SKU: the planners' demand series.
select
    s.region,
    f.sku_code,
    cast({{ dbt.date_trunc('week', 'f.biz_date') }} as date) as week_start,
    sum(f.qty) as qty,
    sum(f.amount) as amount,
    count(distinct f.store_code) as reporting_stores
from {{ ref('fct_sell_through') }} as f
inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
group by s.region, f.sku_code, cast({{ dbt.date_trunc('week', 'f.biz_date') }} as date)
