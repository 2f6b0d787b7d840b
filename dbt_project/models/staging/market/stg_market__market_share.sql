-- generated from contracts/market/market_share.yaml by `bclake contracts --dbt`; do not edit
-- Monthly brand market share per province and category from a retail panel.
with deduped as (
    {{ dedup(source('market', 'market_share'), ['month', 'province', 'category']) }}
)

select
    month,
    province,
    category,
    brand_share,
    _source_file,
    _ingested_at
from deduped
