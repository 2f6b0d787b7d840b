{{ config(
    materialized='incremental',
    unique_key=staging_key('code', 'product_scans'),
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    post_hook="{{ retention_anonymise('scan_date', ['consumer_id']) }}",
) }}
-- Consumer scans of product QR codes, one row per scan, with the code's serial number
-- (the code body is SKU index x 10^10 + serial, followed by 5 check digits).
-- Incremental like fct_sell_through; rows dated before the retention cutoff lose their
-- consumer (macros/retention.sql), as the lake's did.
with candidates as (
    {{ rows_to_decide('code', 'product_scans') }}
),

deduped as (
    {{ dedup('candidates', staging_key('code', 'product_scans')) }}
)

select
    {% for column in staging_columns('code', 'product_scans') -%}
    {{ column }},
    {% endfor -%}
    {{ code_serial('product_code') }} as serial,
    _source_file,
    _source_row,
    _ingested_at
from deduped
