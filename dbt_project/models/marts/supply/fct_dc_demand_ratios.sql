-- How much distributors order from a DC per unit of reported sell-through, per region x
-- SKU, as known at the start of each week: over the weeks before it (var
-- supply_ratio_weeks, 13). The region forecast counts sell-through of the stores that
-- report it; a DC serves every store through the distributors, so the supply plan
-- grosses the forecast up by this ratio. The numerator is the distributors' new orders
-- (`fct_dc_shipment_weeks.new_order_units`), not what the DC shipped: a DC out of stock
-- ships less than it is asked for, and a ratio of shipments would plan it short again (the plan of as_of reads the week holding as_of; the replay in `bclake
-- evaluate` reads the week its window starts). A SKU with under supply_ratio_min_units
-- (50) units of sell-through there takes its region's ratio (`ratio_source` =
-- 'region'); a region with none keeps 1 ('none').
with run as (
    select cast({{ dbt.date_trunc('week', 'as_of') }} as date) as as_of_week
    from {{ ref('as_of_date') }}
),

weekly as (
    select
        coalesce(sh.region, so.region) as region,
        coalesce(sh.sku_code, so.sku_code) as sku_code,
        coalesce(sh.week_start, so.week_start) as week_start,
        coalesce(sh.shipped_units, 0) as shipped_units,
        coalesce(sh.new_order_units, 0) as new_order_units,
        coalesce(so.qty, 0) as sell_through_units
    from {{ ref('fct_dc_shipment_weeks') }} as sh
    full outer join {{ ref('fct_sales_region_sku_week') }} as so
        on sh.region = so.region and sh.sku_code = so.sku_code and sh.week_start = so.week_start
),

weeks as (
    select distinct week_start from weekly
    union
    select as_of_week from run
),

pairs as (
    -- a pair's weeks count from the first week distributors ordered it from the DC: a
    -- new SKU's stores may sell (from launch stock) before the DC ships any, and those
    -- weeks would hold its ratio low for a quarter
    select
        region,
        sku_code,
        coalesce(min(week_start) filter (where new_order_units > 0), min(week_start))
            as first_week
    from weekly
    where region is not null
    group by region, sku_code
),

window_sums as (
    -- every pair at every week, summed over the weeks before it
    select
        p.region,
        p.sku_code,
        w.week_start,
        cast(coalesce(sum(x.shipped_units), 0) as bigint) as shipped_units,
        cast(coalesce(sum(x.new_order_units), 0) as bigint) as new_order_units,
        cast(coalesce(sum(x.sell_through_units), 0) as bigint) as sell_through_units
    from pairs as p
    cross join weeks as w
    left join weekly as x
        on
        p.region = x.region
        and p.sku_code = x.sku_code
        and x.week_start >= w.week_start - interval ({{ var('supply_ratio_weeks') }} * 7) day
        and x.week_start < w.week_start
        and x.week_start >= p.first_week
    group by p.region, p.sku_code, w.week_start
),

regions as (
    select
        region,
        week_start,
        sum(new_order_units) / nullif(sum(sell_through_units), 0) as region_ratio
    from window_sums
    group by region, week_start
)

select
    t.region,
    t.sku_code,
    t.week_start,
    t.shipped_units,
    t.new_order_units,
    t.sell_through_units,
    case
        when t.sell_through_units >= {{ var('supply_ratio_min_units') }} then t.new_order_units / t.sell_through_units
        else coalesce(g.region_ratio, 1.0)
    end as ratio,
    case
        when t.sell_through_units >= {{ var('supply_ratio_min_units') }} then 'sku'
        when g.region_ratio is not null then 'region'
        else 'none'
    end as ratio_source
from window_sums as t
inner join regions as g on t.region = g.region and t.week_start = g.week_start
