{{ config(
    materialized='incremental',
    unique_key=staging_key('dms', 'store_orders'),
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}
-- Store orders to distributors (sell-in to the store), one row per order line, with
-- the days from order to delivery and whether the order was placed from the DMS's
-- replenishment suggestion (null when the export does not say). Incremental like
-- fct_sell_through.
with candidates as (
    {{ rows_to_decide('dms', 'store_orders') }}
),

deduped as (
    {{ dedup('candidates', staging_key('dms', 'store_orders')) }}
)

select
    {% for column in staging_columns('dms', 'store_orders') -%}
    {{ column }},
    {% endfor -%}
    {{ dbt.datediff('order_date', 'delivery_date', 'day') }} as days_to_deliver,
    case
        when order_source in ('suggested', '建议订单') then true
        when order_source is not null then false
    end as from_suggestion,
    _source_file,
    _source_row,
    _ingested_at
from deduped
