-- generated from contracts/code/case_activations.yaml by `bclake contracts --dbt`; do not edit
-- Cases activated at the brand's DC to the distributor they ship to; each covers a serial range of
-- unit codes.
with deduped as (
    {{ dedup(source('code', 'case_activations'), ['case_code']) }}
)

select
    case_code,
    sku_code,
    first_serial,
    last_serial,
    distributor_code,
    warehouse_code,
    activation_time,
    activation_date,
    _source_file,
    _ingested_at
from deduped
