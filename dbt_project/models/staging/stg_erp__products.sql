with deduped as (
    {{ dedup(source('erp', 'products'), ['sku_code']) }}
)

select
    sku_code,
    sku_name,
    category,
    cast(case_pack as integer) as case_pack,
    cast(list_price as double) as list_price,
    cast(retail_price as double) as retail_price,
    launch_date,
    cast(shelf_life_days as integer) as shelf_life_days
from deduped
