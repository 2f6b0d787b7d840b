-- One row per campaign member: treated (got a coupon) or held out, and whether they
-- bought at a store during the campaign. Treated minus hold-out is the campaign's lift.
with purchases as (
    select
        m.campaign_id,
        m.consumer_id,
        count(ss.scan_id) as orders,
        coalesce(sum(ss.order_amount), 0) as order_amount
    from {{ ref('stg_cdp__campaign_members') }} as m
    inner join {{ ref('stg_cdp__campaigns') }} as c on m.campaign_id = c.campaign_id
    left join {{ ref('stg_code__store_scans') }} as ss
        on m.consumer_id = ss.consumer_id
        and ss.scan_date between c.start_date and c.end_date
    group by 1, 2
)

select
    m.campaign_id,
    m.consumer_id,
    m.arm,
    m.assigned_date,
    c.start_date,
    c.end_date,
    c.coupon_value,
    coalesce(p.orders, 0) > 0 as responded,
    coalesce(p.orders, 0) as orders,
    coalesce(p.order_amount, 0) as order_amount,
    coalesce(cp.redeemed, false) as redeemed_coupon
from {{ ref('stg_cdp__campaign_members') }} as m
inner join {{ ref('stg_cdp__campaigns') }} as c on m.campaign_id = c.campaign_id
left join purchases as p on m.campaign_id = p.campaign_id and m.consumer_id = p.consumer_id
left join {{ ref('fct_coupons') }} as cp
    on m.campaign_id = cp.campaign_id and m.consumer_id = cp.consumer_id
