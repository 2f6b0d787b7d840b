-- Brand warehouse stock, one row per warehouse x SKU x snapshot day.
select
    i.warehouse_code,
    w.region,
    i.sku_code,
    i.snapshot_date,
    i.on_hand_units
from {{ ref('stg_erp__dc_inventory') }} as i
left join {{ ref('stg_erp__warehouses') }} as w on i.warehouse_code = w.warehouse_code
