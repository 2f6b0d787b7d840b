-- One row per SKU with its price band within its category (terciles of retail price).
select
    p.sku_code,
    p.sku_name,
    p.category,
    p.case_pack,
    p.list_price,
    p.retail_price,
    p.launch_date,
    p.shelf_life_days,
    case ntile(3) over (partition by p.category order by p.retail_price)
        when 1 then 'low' when 2 then 'mid' else 'high'
    end as price_band
from {{ ref('stg_erp__products') }} as p
