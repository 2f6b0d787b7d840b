-- generated from contracts/dms/promotion_signups.yaml by `bclake contracts --dbt`; do not edit
-- Stores that signed up to run a promotion.
with deduped as (
    {{ dedup(source('dms', 'promotion_signups'), ['promo_id', 'store_code']) }}
)

select
    promo_id,
    store_code,
    signup_date,
    _source_file,
    _ingested_at
from deduped
