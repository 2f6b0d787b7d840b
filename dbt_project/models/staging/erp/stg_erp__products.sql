-- generated from contracts/erp/products.yaml by `bclake contracts --dbt`; do not edit
-- Product master from the brand ERP, one row per SKU.
with deduped as (
    {{ dedup(source('erp', 'products'), ['sku_code']) }}
)

select
    sku_code,
    sku_name,
    category,
    case_pack,
    list_price,
    retail_price,
    launch_date,
    shelf_life_days,
    _source_file,
    _ingested_at
from deduped
