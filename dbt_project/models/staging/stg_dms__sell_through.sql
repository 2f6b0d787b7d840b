with deduped as (
    {{ dedup(source('dms', 'sell_through'), ['report_id', 'sku_code']) }}
)

select
    report_id,
    store_code,
    biz_date,
    sku_code,
    cast(qty as integer) as qty,
    cast(amount as double) as amount
from deduped
