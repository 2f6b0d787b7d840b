-- Product tags (产品标签) at every week end: hit, long-tail, new and seasonal SKUs,
-- from units stores bought (all stores order; not all report POS). Thresholds are
-- dbt vars (dbt_project.yml), explained in docs/tags.md; reason texts in macros/reasons.sql.
{#- parameters of the reason texts, as SQL over the ranked rows -#}
{% set hit = {'units': 'units', 'top_pct': reason_top_pct('units_rank')} %}
{% set long_tail = {'units': 'units', 'bottom_pct': reason_bottom_pct('units_rank')} %}
{% set days_on_sale = dbt.datediff('launch_date', 'as_of_date', 'day') %}
{% set seasonal = {'peak_pct': 'round(peak_share * 100, 1)'} %}
with sku_weeks as (
    select
        sku_code,
        cast({{ dbt.date_trunc('week', 'order_date') }} as date) as week_start,
        sum(qty_delivered) as units
    from {{ ref('fct_store_orders') }}
    group by 1, 2
),

as_of as (
    select distinct week_start
    from sku_weeks
    order by 1 desc
    limit {{ var('tag_history_weeks') }}
),

sku_year as (
    select
        p.sku_code,
        p.category,
        p.launch_date,
        {{ dbt.dateadd('day', 6, 'a.week_start') }} as as_of_date,
        coalesce(sum(w.units), 0) as units
    from as_of as a
    cross join {{ ref('dim_product') }} as p
    left join sku_weeks as w
        on w.sku_code = p.sku_code
        and w.week_start > {{ dbt.dateadd('week', -52, 'a.week_start') }}
        and w.week_start <= a.week_start
    group by 1, 2, 3, 4
),

ranked as (
    select
        *,
        percent_rank() over (partition by as_of_date order by units) as units_rank
    from sku_year
),

sku_months as (
    select
        sku_code,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        sum(qty_delivered) as units
    from {{ ref('fct_store_orders') }}
    group by 1, 2
),

seasonality as (
    select
        r.sku_code,
        r.as_of_date,
        max(m.units) * 1.0 / nullif(sum(m.units), 0) as peak_share,
        count(*) as months
    from ranked as r
    inner join sku_months as m
        on m.sku_code = r.sku_code
        and m.month_start > {{ dbt.dateadd('month', -13, 'r.as_of_date') }}
        and m.month_start <= {{ dbt.dateadd('month', -1, 'r.as_of_date') }}
    group by 1, 2
)

select
    'product' as entity_type,
    sku_code as entity_id,
    'hit_product' as tag,
    cast(as_of_date as date) as as_of_date,
    units_rank as score,
    {{ tag_reason('hit_product', 'zh', hit) }} as reason,
    {{ tag_reason('hit_product', 'en', hit) }} as reason_en
from ranked
where units_rank >= 1 - {{ var('hit_product_top_share') }}

union all

select
    'product' as entity_type,
    sku_code as entity_id,
    'long_tail_product' as tag,
    cast(as_of_date as date) as as_of_date,
    1 - units_rank as score,
    {{ tag_reason('long_tail_product', 'zh', long_tail) }} as reason,
    {{ tag_reason('long_tail_product', 'en', long_tail) }} as reason_en
from ranked
where units_rank <= {{ var('long_tail_bottom_share') }}

union all

select
    'product' as entity_type,
    sku_code as entity_id,
    'new_product' as tag,
    cast(as_of_date as date) as as_of_date,
    1 - {{ days_on_sale }} * 1.0 / {{ var('new_product_days') }} as score,
    {{ tag_reason('new_product', 'zh', {'days': days_on_sale}) }} as reason,
    {{ tag_reason('new_product', 'en', {'days': days_on_sale}) }} as reason_en
from ranked
where
    launch_date > {{ dbt.dateadd('day', -var('new_product_days'), 'as_of_date') }}
    and launch_date <= as_of_date

union all

select
    'product' as entity_type,
    sku_code as entity_id,
    'seasonal_product' as tag,
    cast(as_of_date as date) as as_of_date,
    peak_share as score,
    {{ tag_reason('seasonal_product', 'zh', seasonal) }} as reason,
    {{ tag_reason('seasonal_product', 'en', seasonal) }} as reason_en
from seasonality
where months >= 12 and peak_share >= {{ var('seasonal_peak_share') }}
