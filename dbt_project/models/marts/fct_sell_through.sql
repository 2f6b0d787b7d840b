{{ config(
    materialized='incremental',
    unique_key=['report_id', 'sku_code'],
    incremental_strategy='delete+insert',
) }}
-- POS sell-through, one row per report line (store x SKU x day), deduplicated by key.
-- Incremental: only files ingested since the last run are read (straight from the lake,
-- because a staging view would deduplicate the whole history first); a re-sent line
-- replaces the old one by key, exactly as a full refresh would.
with new_rows as (
    {{ rows_ingested_since_last_run(source('dms', 'sell_through')) }}
),

deduped as (
    {{ dedup('new_rows', ['report_id', 'sku_code']) }}
)

select
    report_id,
    sku_code,
    store_code,
    biz_date,
    qty,
    amount,
    _ingested_at
from deduped
