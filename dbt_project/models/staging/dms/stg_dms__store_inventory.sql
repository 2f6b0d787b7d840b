-- generated from contracts/dms/store_inventory.yaml by `bclake contracts --dbt`; do not edit
-- Weekly on-hand stock reported by stores that use the ordering mini-program, nested SKU lines.
with deduped as (
    {{ dedup(source('dms', 'store_inventory'), ['report_id', 'sku_code']) }}
)

select
    report_id,
    store_code,
    snapshot_date,
    sku_code,
    on_hand_units,
    _source_file,
    _ingested_at
from deduped
