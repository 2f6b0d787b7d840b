-- generated from contracts/erp/warehouses.yaml by `bclake contracts --dbt`; do not edit
-- Brand warehouses and regional distribution centres (DCs).
with deduped as (
    {{ dedup(source('erp', 'warehouses'), ['warehouse_code']) }}
)

select
    warehouse_code,
    warehouse_name,
    warehouse_type,
    region,
    city,
    _source_file,
    _ingested_at
from deduped
