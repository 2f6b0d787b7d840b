-- generated from contracts/dms/promotions.yaml by `bclake contracts --dbt`; do not edit
-- Trade promotions per region and SKU.
with deduped as (
    {{ dedup(source('dms', 'promotions'), ['promo_id']) }}
)

select
    promo_id,
    region,
    sku_code,
    start_date,
    end_date,
    discount,
    mechanism,
    _source_file,
    _ingested_at
from deduped
