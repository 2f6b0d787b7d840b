-- generated from contracts/code/product_scans.yaml by `bclake contracts --dbt`; do not edit
-- Consumer scans of the QR code on a product unit, one row per scan.
with deduped as (
    {{ dedup(source('code', 'product_scans'), ['scan_id']) }}
)

select
    scan_id,
    product_code,
    sku_code,
    batch_no,
    scan_time,
    lat,
    lon,
    consumer_id,
    reward_amount,
    scan_date,
    _source_file,
    _ingested_at
from deduped
