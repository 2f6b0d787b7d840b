-- Units each plant made of each SKU per Monday week (ERP output export), one row per
-- plant x SKU x week: the plants' weekly output by category (`fct_plant_capacity_weeks`)
-- and the week before the window of `bclake evaluate`'s closed-loop replay.
select
    o.plant_code,
    o.sku_code,
    p.category,
    o.week_start,
    cast(sum(o.output_units) as bigint) as output_units
from {{ ref('stg_erp__plant_output') }} as o
left join {{ ref('dim_product') }} as p on o.sku_code = p.sku_code
group by o.plant_code, o.sku_code, p.category, o.week_start
