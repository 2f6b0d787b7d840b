-- Consumer purchases at a store paid by scanning the store's code (mini program): one
-- row per scan with the order amount, coupon used and rating given.
select
    ss.scan_id,
    ss.store_code,
    s.region,
    s.distributor_code,
    ss.consumer_id,
    ss.scan_time,
    ss.scan_date,
    ss.order_amount,
    ss.coupon_id,
    ss.coupon_id is not null as used_coupon,
    ss.rating
from {{ ref('stg_code__store_scans') }} as ss
left join {{ ref('stg_dms__stores') }} as s on ss.store_code = s.store_code
