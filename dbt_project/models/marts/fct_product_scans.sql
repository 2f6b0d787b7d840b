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
    reward_amount
from {{ ref('stg_code__product_scans') }}
