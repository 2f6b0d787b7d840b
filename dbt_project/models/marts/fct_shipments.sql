-- Brand shipments to distributors (sell-in), one row per shipment line, with lead time
-- and fill of the distributor's order.
select
    sh.shipment_id,
    sh.sku_code,
    sh.distributor_code,
    d.region,
    sh.warehouse_code,
    sh.order_date,
    sh.ship_date,
    sh.qty_ordered_units,
    sh.qty_shipped_units,
    sh.amount,
    {{ dbt.datediff('sh.order_date', 'sh.ship_date', 'day') }} as days_to_ship
from {{ ref('stg_erp__shipments') }} as sh
left join {{ ref('stg_dms__distributors') }} as d on sh.distributor_code = d.distributor_code
