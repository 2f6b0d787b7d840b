-- generated from contracts/erp/plant_capacity.yaml by `bclake contracts --dbt`; do not edit
-- Weekly production capacity per plant and category, in units.
with deduped as (
    {{ dedup(source('erp', 'plant_capacity'), ['week_start', 'plant_code', 'category']) }}
)

select
    week_start,
    plant_code,
    plant_name,
    category,
    capacity_units,
    _source_file,
    _ingested_at
from deduped
