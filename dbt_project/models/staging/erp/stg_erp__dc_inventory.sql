-- generated from contracts/erp/dc_inventory.yaml by `bclake contracts --dbt`; do not edit
-- End-of-day on-hand units per DC and SKU.
with deduped as (
    {{ dedup(source('erp', 'dc_inventory'), ['snapshot_date', 'warehouse_code', 'sku_code']) }}
)

select
    snapshot_date,
    warehouse_code,
    sku_code,
    on_hand_units,
    _source_file,
    _ingested_at
from deduped
