-- generated from contracts/market/competitor_prices.yaml by `bclake contracts --dbt`; do not edit
-- Monthly competitor price index (brand = 1.0) and promotion intensity per province and category.
with deduped as (
    {{ dedup(source('market', 'competitor_prices'), ['month', 'province', 'category']) }}
)

select
    month,
    province,
    category,
    competitor_price_index,
    promo_intensity,
    _source_file,
    _ingested_at
from deduped
