-- Coupons issued to consumers, one row per coupon, redeemed or not.
select
    c.coupon_id,
    c.campaign_id,
    c.consumer_id,
    c.issued_date,
    c.expire_date,
    c.face_value,
    c.redeemed_time is not null as redeemed,
    cast(c.redeemed_time as date) as redeemed_date,
    c.redeemed_store_code,
    c.order_amount
from {{ ref('stg_cdp__coupons') }} as c
