-- generated from contracts/erp/plant_output.yaml by `bclake contracts --dbt`; do not edit
-- Weekly units produced per plant and SKU.
with deduped as (
    {{ dedup(source('erp', 'plant_output'), ['week_start', 'plant_code', 'sku_code']) }}
)

select
    week_start,
    plant_code,
    sku_code,
    output_units,
    _source_file,
    _ingested_at
from deduped
