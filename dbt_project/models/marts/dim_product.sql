select
    sku_code,
    sku_name,
    category,
    case_pack,
    list_price,
    retail_price,
    launch_date,
    shelf_life_days
from {{ ref('stg_erp__products') }}
