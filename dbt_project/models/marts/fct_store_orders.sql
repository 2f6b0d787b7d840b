-- Store orders to distributors at line grain, with fill.
select
    o.order_id,
    o.sku_code,
    o.store_code,
    o.distributor_code,
    o.order_date,
    o.delivery_date,
    o.qty_ordered,
    o.qty_delivered,
    o.amount
from {{ ref('stg_dms__store_orders') }} as o
