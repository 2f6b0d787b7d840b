-- generated from contracts/erp/shipments.yaml by `bclake contracts --dbt`; do not edit
-- Shipments from DCs to distributors, one row per shipment line (ERP exports lines flat).
with deduped as (
    {{ dedup(source('erp', 'shipments'), ['shipment_id', 'sku_code']) }}
)

select
    shipment_id,
    distributor_code,
    warehouse_code,
    order_date,
    ship_date,
    sku_code,
    qty_ordered_units,
    qty_shipped_units,
    amount,
    _source_file,
    _ingested_at
from deduped
