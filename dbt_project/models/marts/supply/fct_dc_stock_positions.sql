-- On-hand stock of every DC x SKU at the DC's latest ERP snapshot: the supply plan's
-- opening stock. A SKU missing from that snapshot has no row (the plan counts it as 0).
with latest as (
    select
        warehouse_code,
        max(snapshot_date) as snapshot_date
    from {{ ref('fct_dc_inventory') }}
    group by warehouse_code
)

select
    i.warehouse_code,
    i.region,
    i.sku_code,
    i.snapshot_date,
    i.on_hand_units
from {{ ref('fct_dc_inventory') }} as i
inner join latest as l
    on i.warehouse_code = l.warehouse_code and i.snapshot_date = l.snapshot_date
