-- Point-in-time consumer features for uplift targeting, one row per snapshot_date x
-- consumer_id (snapshots: fct_marketing_snapshots). Everything is as of the snapshot date:
-- store orders and product scans in the trailing `marketing_window_days`, coupon history of
-- campaigns ended by then, groups joined and referrals made by then, the home store's
-- channel tags of the latest week end on or before it. Age is used only with the
-- consumer's profile consent. consent_marketing is the consumer's latest consent.
with category_ranked as (
    select
        *,
        row_number() over (
            partition by snapshot_date, consumer_id order by scans desc, category
        ) as pick
    from {{ ref('fct_marketing_category_features') }}
),

scans as (
    select
        snapshot_date,
        consumer_id,
        sum(scans) as scans,
        sum(promo_scans) as promo_scans,
        sum(evening_scans) as evening_scans,
        sum(weekend_scans) as weekend_scans,
        sum(case when scans > 0 then 1 else 0 end) as categories_scanned,
        max(case when pick = 1 and scans > 0 then category end) as top_category,
        max(case when pick = 1 then scans end) as top_category_scans,
        sum(coupons_received) as coupons_received,
        sum(coupons_redeemed) as coupons_redeemed,
        sum(times_held_out) as times_held_out,
        sum(held_out_purchases) as held_out_purchases
    from category_ranked
    group by 1, 2
),

-- groups joined and referrals made by the snapshot, group interactions in its window: the
-- three CDP activity tables in one pass over the snapshots
activity_events as (
    select
        consumer_id,
        join_date as event_date,
        'group' as kind
    from {{ ref('stg_cdp__group_members') }}
    union all
    select
        consumer_id,
        interaction_date as event_date,
        'interaction' as kind
    from {{ ref('stg_cdp__interactions') }}
    union all
    select
        referrer_id as consumer_id,
        referral_date as event_date,
        'referral' as kind
    from {{ ref('stg_cdp__referrals') }}
),

activity as (
    select
        s.snapshot_date,
        s.consumer_id,
        sum(case when a.kind = 'group' then 1 else 0 end) as groups_joined,
        sum(
            case when a.kind = 'interaction' and a.event_date >= s.window_start then 1 else 0 end
        ) as group_interactions,
        sum(case when a.kind = 'referral' then 1 else 0 end) as referrals_made
    from {{ ref('fct_marketing_snapshots') }} as s
    inner join activity_events as a
        on s.consumer_id = a.consumer_id and a.event_date <= s.snapshot_date
    group by 1, 2
),

tag_dates as (
    select
        s.snapshot_date,
        max(t.as_of_date) as tag_date
    from (select distinct snapshot_date from {{ ref('fct_marketing_snapshots') }}) as s
    inner join (
        select distinct as_of_date from {{ ref('channel_tags') }}
        where entity_type = 'store'
    ) as t on t.as_of_date <= s.snapshot_date
    group by 1
),

store_tags as (
    select
        d.snapshot_date,
        t.entity_id as store_code,
        max(case when t.tag = 'high_contribution_store' then 1 else 0 end) as high_contribution,
        max(case when t.tag = 'potential_store' then 1 else 0 end) as potential,
        max(case when t.tag = 'slow_moving_store' then 1 else 0 end) as slow_moving
    from tag_dates as d
    inner join {{ ref('channel_tags') }} as t
        on d.tag_date = t.as_of_date and t.entity_type = 'store'
    group by 1, 2
),

-- the home store's promotion share of scans over the whole months of the window before the
-- snapshot: what a consumer of that store would show by chance
store_promo_shares as (
    select
        d.snapshot_date,
        m.store_code,
        sum(m.promo_scans) * 1.0 / nullif(sum(m.scans), 0) as store_promo_share
    from (
        select distinct
            snapshot_date,
            window_start
        from {{ ref('fct_marketing_snapshots') }}
    ) as d
    inner join {{ ref('fct_store_promo_scan_months') }} as m
        on m.month_start >= d.window_start
        and m.month_start < {{ dbt.date_trunc('month', 'd.snapshot_date') }}
    group by 1, 2
),

city_tiers as (
    select
        city,
        min(tier) as tier,
        min(region) as region
    from {{ ref('dim_geo') }}
    group by 1
)

select
    s.snapshot_date,
    s.consumer_id,
    s.is_newest,
    c.consent_marketing,
    c.register_channel,
    {{ dbt.datediff('c.register_date', 's.snapshot_date', 'day') }} as tenure_days,
    case when c.consent_profile then c.age_band end as age_band,
    ct.tier as city_tier,
    ct.region as consumer_region,
    s.home_store_code,
    st.region as home_region,
    st.distributor_code as home_distributor_code,
    st.channel_type as home_channel_type,
    st.size_class as home_size_class,
    st.city_tier as home_city_tier,
    coalesce(tg.high_contribution, 0) = 1 as home_high_contribution,
    coalesce(tg.potential, 0) = 1 as home_potential,
    coalesce(tg.slow_moving, 0) = 1 as home_slow_moving,
    s.orders,
    s.order_amount,
    s.order_amount / nullif(s.orders, 0) as avg_order_amount,
    {{ dbt.datediff('s.last_order_date', 's.snapshot_date', 'day') }} as recency_days,
    s.coupon_orders,
    s.coupon_orders * 1.0 / nullif(s.orders, 0) as coupon_order_share,
    s.stores_visited,
    coalesce(sc.scans, 0) as scans,
    coalesce(sc.promo_scans, 0) as promo_scans,
    sc.promo_scans * 1.0 / nullif(sc.scans, 0) as promo_scan_share,
    sps.store_promo_share,
    (coalesce(sc.promo_scans, 0) + {{ var('promo_index_prior_scans') }})
    / (coalesce(sc.scans, 0) * sps.store_promo_share + {{ var('promo_index_prior_scans') }})
        as promo_index,
    sc.evening_scans * 1.0 / nullif(sc.scans, 0) as evening_scan_share,
    sc.weekend_scans * 1.0 / nullif(sc.scans, 0) as weekend_scan_share,
    coalesce(sc.categories_scanned, 0) as categories_scanned,
    sc.top_category,
    sc.top_category_scans * 1.0 / nullif(sc.scans, 0) as top_category_share,
    coalesce(sc.coupons_received, 0) as coupons_received,
    coalesce(sc.coupons_redeemed, 0) as coupons_redeemed,
    sc.coupons_redeemed * 1.0 / nullif(sc.coupons_received, 0) as coupon_redemption_rate,
    coalesce(sc.times_held_out, 0) as times_held_out,
    coalesce(sc.held_out_purchases, 0) as held_out_purchases,
    sc.held_out_purchases * 1.0 / nullif(sc.times_held_out, 0) as held_out_purchase_rate,
    coalesce(ac.groups_joined, 0) as groups_joined,
    coalesce(ac.group_interactions, 0) as group_interactions,
    coalesce(ac.referrals_made, 0) as referrals_made
from {{ ref('fct_marketing_snapshots') }} as s
inner join {{ ref('dim_consumer') }} as c on s.consumer_id = c.consumer_id
left join city_tiers as ct on c.city = ct.city
left join {{ ref('dim_store') }} as st on s.home_store_code = st.store_code
left join store_tags as tg
    on s.snapshot_date = tg.snapshot_date and s.home_store_code = tg.store_code
left join store_promo_shares as sps
    on s.snapshot_date = sps.snapshot_date and s.home_store_code = sps.store_code
left join scans as sc on s.snapshot_date = sc.snapshot_date and s.consumer_id = sc.consumer_id
left join activity as ac
    on s.snapshot_date = ac.snapshot_date and s.consumer_id = ac.consumer_id
