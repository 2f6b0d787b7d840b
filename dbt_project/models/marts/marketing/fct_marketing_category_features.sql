-- Point-in-time scan behaviour and coupon history per snapshot x consumer x product
-- category (only categories the consumer scanned or got a coupon for). Scans: product QR
-- scans in the trailing `marketing_window_days` up to the snapshot date; promo_scans: those
-- of a SKU the consumer's home store sold at a promotion price that day (a DMS promotion
-- the store signed up to), which is how price sensitivity shows in the scans. Coupon
-- history: campaigns of the category that ended on or before the snapshot date.
with scans as (
    select
        s.snapshot_date,
        s.consumer_id,
        s.home_store_code,
        ps.scan_id,
        ps.sku_code,
        ps.scan_date,
        ps.scan_time,
        p.category
    from {{ ref('fct_marketing_snapshots') }} as s
    inner join {{ ref('fct_product_scans') }} as ps
        on s.consumer_id = ps.consumer_id
        and ps.scan_date >= s.window_start
        and ps.scan_date <= s.snapshot_date
    inner join {{ ref('dim_product') }} as p on ps.sku_code = p.sku_code
),

promo_scans as (
    select distinct
        sc.snapshot_date,
        sc.consumer_id,
        sc.scan_id
    from scans as sc
    inner join {{ ref('int_store_promotions') }} as sp
        on sc.home_store_code = sp.store_code
        and sc.sku_code = sp.sku_code
        and sc.scan_date between sp.start_date and sp.end_date
),

scan_counts as (
    select
        sc.snapshot_date,
        sc.consumer_id,
        sc.category,
        count(*) as scans,
        count(pr.scan_id) as promo_scans,
        sum(case when extract(hour from sc.scan_time) >= 18 then 1 else 0 end) as evening_scans,
        -- days off by the Chinese calendar: weekends and holidays, make-up working days not
        sum(case when d.is_workday then 0 else 1 end) as weekend_scans
    from scans as sc
    inner join {{ ref('dim_date') }} as d on sc.scan_date = d.date_day
    left join promo_scans as pr
        on sc.snapshot_date = pr.snapshot_date
        and sc.consumer_id = pr.consumer_id
        and sc.scan_id = pr.scan_id
    group by 1, 2, 3
),

coupon_history as (
    select
        s.snapshot_date,
        s.consumer_id,
        c.category,
        sum(case when r.arm = 'treated' then 1 else 0 end) as coupons_received,
        sum(case when r.redeemed_coupon then 1 else 0 end) as coupons_redeemed,
        sum(case when r.arm = 'holdout' then 1 else 0 end) as times_held_out,
        sum(case when r.arm = 'holdout' and r.responded then 1 else 0 end) as held_out_purchases
    from {{ ref('fct_marketing_snapshots') }} as s
    inner join {{ ref('fct_campaign_responses') }} as r
        on s.consumer_id = r.consumer_id and r.end_date <= s.snapshot_date
    inner join {{ ref('stg_cdp__campaigns') }} as c on r.campaign_id = c.campaign_id
    group by 1, 2, 3
),

keys as (
    select
        snapshot_date,
        consumer_id,
        category
    from scan_counts
    union
    select
        snapshot_date,
        consumer_id,
        category
    from coupon_history
)

select
    k.snapshot_date,
    k.consumer_id,
    k.category,
    coalesce(sc.scans, 0) as scans,
    coalesce(sc.promo_scans, 0) as promo_scans,
    coalesce(sc.evening_scans, 0) as evening_scans,
    coalesce(sc.weekend_scans, 0) as weekend_scans,
    coalesce(ch.coupons_received, 0) as coupons_received,
    coalesce(ch.coupons_redeemed, 0) as coupons_redeemed,
    coalesce(ch.times_held_out, 0) as times_held_out,
    coalesce(ch.held_out_purchases, 0) as held_out_purchases
from keys as k
left join scan_counts as sc
    on k.snapshot_date = sc.snapshot_date
    and k.consumer_id = sc.consumer_id
    and k.category = sc.category
left join coupon_history as ch
    on k.snapshot_date = ch.snapshot_date
    and k.consumer_id = ch.consumer_id
    and k.category = ch.category
