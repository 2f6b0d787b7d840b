with deduped as (
    {{ dedup(source('dms', 'store_orders'), ['order_id', 'sku_code']) }}
)

select
    order_id,
    store_code,
    distributor_code,
    order_date,
    delivery_date,
    sku_code,
    cast(qty_ordered as integer) as qty_ordered,
    cast(qty_delivered as integer) as qty_delivered,
    cast(amount as double) as amount
from deduped
