-- Units each plant made of each SKU per Monday week (ERP output export), one row per
-- plant x SKU x week: what the supply plan's changeover penalty starts from, and what
-- the closed-loop replay of `bclake evaluate` takes as the week before its window.
select
    o.plant_code,
    o.sku_code,
    p.category,
    o.week_start,
    cast(sum(o.output_units) as bigint) as output_units
from {{ ref('stg_erp__plant_output') }} as o
left join {{ ref('dim_product') }} as p on o.sku_code = p.sku_code
group by o.plant_code, o.sku_code, p.category, o.week_start
