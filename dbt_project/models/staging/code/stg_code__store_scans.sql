-- generated from contracts/code/store_scans.yaml by `bclake contracts --dbt`; do not edit
-- Consumer scans of a store's QR code at purchase (order, coupon redemption, rating).
with deduped as (
    {{ dedup(source('code', 'store_scans'), ['scan_id']) }}
)

select
    scan_id,
    store_code,
    consumer_id,
    scan_time,
    order_amount,
    coupon_id,
    rating,
    scan_date,
    _source_file,
    _ingested_at
from deduped
