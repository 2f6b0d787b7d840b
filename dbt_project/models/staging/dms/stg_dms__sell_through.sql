-- generated from contracts/dms/sell_through.yaml by `bclake contracts --dbt`; do not edit
-- Daily store sell-through reported by stores with a POS, one document per store and day with
-- nested SKU lines.
with deduped as (
    {{ dedup(source('dms', 'sell_through'), ['report_id', 'sku_code']) }}
)

select
    report_id,
    store_code,
    biz_date,
    sku_code,
    qty,
    amount,
    _source_file,
    _ingested_at
from deduped
