-- generated from contracts/cdp/coupons.yaml by `bclake contracts --dbt`; do not edit
-- Coupons issued to consumers, with their redemption when it happened (nested).
with deduped as (
    {{ dedup(source('cdp', 'coupons'), ['coupon_id']) }}
)

select
    coupon_id,
    campaign_id,
    consumer_id,
    issued_date,
    expire_date,
    face_value,
    redeemed_time,
    redeemed_store_code,
    order_amount,
    _source_file,
    _ingested_at
from deduped
