-- generated from contracts/dms/store_orders.yaml by `bclake contracts --dbt`; do not edit
-- Orders stores place with their distributor, one document per order with nested SKU lines.
with deduped as (
    {{ dedup(source('dms', 'store_orders'), ['order_id', 'sku_code']) }}
)

select
    order_id,
    store_code,
    distributor_code,
    order_date,
    delivery_date,
    order_source,
    sku_code,
    qty_ordered,
    qty_delivered,
    amount,
    _source_file,
    _ingested_at
from deduped
