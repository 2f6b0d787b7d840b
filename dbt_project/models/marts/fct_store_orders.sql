{{ config(
    materialized='incremental',
    unique_key=['order_id', 'sku_code'],
    incremental_strategy='delete+insert',
) }}
-- Store orders to distributors (sell-in to the store), one row per order line, with
-- the days from order to delivery. Incremental like fct_sell_through.
with new_rows as (
    {{ rows_ingested_since_last_run(source('dms', 'store_orders')) }}
),

deduped as (
    {{ dedup('new_rows', ['order_id', 'sku_code']) }}
)

select
    order_id,
    sku_code,
    store_code,
    distributor_code,
    order_date,
    delivery_date,
    qty_ordered,
    qty_delivered,
    amount,
    {{ dbt.datediff('order_date', 'delivery_date', 'day') }} as days_to_deliver,
    _ingested_at
from deduped
