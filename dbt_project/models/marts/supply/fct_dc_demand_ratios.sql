-- How much a DC ships per unit of reported sell-through, per region x SKU over the 13
-- weeks before as_of. The region forecast counts sell-through of the stores that report
-- it; a DC ships to every store through the distributors, so the supply plan grosses the
-- forecast up by this ratio. A SKU with under 50 units of sell-through in the window
-- takes its region's ratio (`ratio_source` = 'region'); a region with none keeps 1
-- ('none').
with run as (
    select as_of from {{ ref('as_of_date') }}
),

shipped as (
    select
        sh.region,
        sh.sku_code,
        sum(sh.qty_shipped_units) as shipped_units
    from {{ ref('fct_shipments') }} as sh
    cross join run as r
    where sh.ship_date >= r.as_of - interval 91 day and sh.ship_date < r.as_of
    group by sh.region, sh.sku_code
),

sold as (
    select
        s.region,
        f.sku_code,
        sum(f.qty) as sell_through_units
    from {{ ref('fct_sell_through') }} as f
    inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
    cross join run as r
    where f.biz_date >= r.as_of - interval 91 day and f.biz_date < r.as_of
    group by s.region, f.sku_code
),

pairs as (
    select
        coalesce(sh.region, so.region) as region,
        coalesce(sh.sku_code, so.sku_code) as sku_code,
        coalesce(sh.shipped_units, 0) as shipped_units,
        coalesce(so.sell_through_units, 0) as sell_through_units
    from shipped as sh
    full outer join sold as so on sh.region = so.region and sh.sku_code = so.sku_code
),

regions as (
    select
        region,
        sum(shipped_units) / nullif(sum(sell_through_units), 0) as region_ratio
    from pairs
    group by region
)

select
    p.region,
    p.sku_code,
    p.shipped_units,
    p.sell_through_units,
    case
        when p.sell_through_units >= 50 then p.shipped_units / p.sell_through_units
        else coalesce(g.region_ratio, 1.0)
    end as ratio,
    case
        when p.sell_through_units >= 50 then 'sku'
        when g.region_ratio is not null then 'region'
        else 'none'
    end as ratio_source
from pairs as p
inner join regions as g on p.region = g.region
where p.region is not null
