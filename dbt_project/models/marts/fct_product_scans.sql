{{ config(
    materialized='incremental',
    unique_key=['scan_id'],
    incremental_strategy='delete+insert',
) }}
-- Consumer scans of product QR codes, one row per scan, with the code's serial number
-- (the code body is SKU index x 10^10 + serial, followed by 5 check digits).
-- Incremental like fct_sell_through.
with new_rows as (
    {{ rows_ingested_since_last_run(source('code', 'product_scans')) }}
),

deduped as (
    {{ dedup('new_rows', ['scan_id']) }}
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
    reward_amount,
    {{ code_serial('product_code') }} as serial,
    _ingested_at
from deduped
