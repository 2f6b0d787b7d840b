with deduped as (
    {{ dedup(source('code', 'product_scans'), ['scan_id']) }}
)

select
    scan_id,
    product_code,
    sku_code,
    batch_no,
    scan_time,
    scan_date,
    lat,
    lon,
    consumer_id,
    cast(reward_amount as double) as reward_amount
from deduped
