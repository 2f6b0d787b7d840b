-- Store plans (一店一策): per store, the activities for the next store_plan_horizon_weeks
-- weeks, ranked by expected incremental units = the lift of the store's segment (from
-- fct_store_activity_effects) x its own baseline units x the exposure the activity adds:
-- promotions of its region it has not signed up to, its failed display checks, no coupon
-- redeemed lately, no community group. Only activities whose pooled lift is significant.
-- New-product trials go to core stores only and rank after the measured activities (their
-- units are expected sales, not a measured lift). docs/store_plans.md explains each rule.
{% set horizon_days = 7 * var('store_plan_horizon_weeks') %}
{% set scenarios = var('scenario_by_category') %}
with as_of as (
    select max(order_date) as as_of_date from {{ ref('fct_store_orders') }}
),

stores as (
    select
        store_code,
        region,
        distributor_code,
        channel_type,
        city_tier,
        {{ store_segment('channel_type', 'city_tier') }} as segment
    from {{ ref('dim_store') }}
),

-- the store's own estimate where its segment has enough treated stores, else the pooled one
effects as (
    select
        st.store_code,
        e.activity,
        e.segment,
        e.relative_lift,
        e.ci_low,
        e.ci_high,
        e.treated_stores,
        e.control_stores,
        e.evidence_start,
        e.evidence_end,
        row_number() over (
            partition by st.store_code, e.activity
            order by case when e.segment = 'all' then 1 else 0 end
        ) as pick
    from stores as st
    inner join {{ ref('fct_store_activity_effects') }} as e
        on
        (e.segment = st.segment or e.segment = 'all')
        and e.treated_stores >= case
            when e.segment = 'all' then 2 else {{ var('store_plan_min_stores') }}
        end
        and e.std_error is not null
),

-- proposed only where the activity's pooled lift is significant (one test per activity,
-- not one per segment: twenty segments would give a false positive by chance) and the
-- estimate used is positive
chosen as (
    select e.*
    from effects as e
    where
        e.pick = 1
        and e.relative_lift > 0
        and e.activity in (
            select p.activity
            from {{ ref('fct_store_activity_effects') }} as p
            where p.segment = 'all' and p.significant
        )
),

-- trailing units bought per day, per store x SKU
baseline_sku as (
    select
        o.store_code,
        o.sku_code,
        sum(o.qty_delivered) / (7.0 * {{ var('store_plan_baseline_weeks') }}) as units_per_day,
        sum(o.amount) / nullif(sum(o.qty_delivered), 0) as price
    from {{ ref('fct_store_orders') }} as o
    cross join as_of as a
    where {{ in_trailing_window('o.order_date', 7 * var('store_plan_baseline_weeks')) }}
    group by 1, 2
),

baseline as (
    select
        b.store_code,
        sum(b.units_per_day) as units_per_day,
        sum(b.units_per_day * b.price) / nullif(sum(b.units_per_day), 0) as price
    from baseline_sku as b
    group by 1
),

categories as (
    select count(distinct category) as n from {{ ref('dim_product') }}
),

upcoming as (
    select
        st.store_code,
        p.promo_id,
        p.sku_code,
        p.discount,
        {{ dbt.datediff(
            'greatest(p.start_date, ' ~ dbt.dateadd('day', 1, 'a.as_of_date') ~ ')',
            'least(p.end_date, ' ~ dbt.dateadd('day', horizon_days, 'a.as_of_date') ~ ')',
            'day') }} + 1 as promo_days
    from {{ ref('stg_dms__promotions') }} as p
    cross join as_of as a
    inner join stores as st on p.region = st.region
    left join {{ ref('stg_dms__promotion_signups') }} as sg
        on p.promo_id = sg.promo_id and st.store_code = sg.store_code
    where
        sg.promo_id is null
        and p.end_date > a.as_of_date
        and p.start_date <= {{ dbt.dateadd('day', horizon_days, 'a.as_of_date') }}
),

promo_candidates as (
    select
        u.store_code,
        'promotion_signup' as activity,
        sum(u.promo_days * b.units_per_day) as exposed_units,
        sum(u.promo_days * b.units_per_day * coalesce(b.price, 0) * (1 - u.discount))
            as exposed_yuan,
        count(*) as promotions,
        string_agg(u.promo_id, ',' order by u.promo_id) as promo_ids
    from upcoming as u
    inner join baseline_sku as b on u.store_code = b.store_code and u.sku_code = b.sku_code
    group by 1
),

display_checks as (
    select
        c.store_code,
        c.compliant
    from {{ ref('stg_dms__display_checks') }} as c
    cross join as_of as a
    where {{ in_trailing_window('c.check_date', var('store_plan_display_months'), 'month') }}
),

-- a store's failed share of checks, shrunk towards every store's by a few pseudo-checks
-- (a handful of checks is a noisy rate)
display_room as (
    select
        c.store_code,
        count(*) as checks,
        sum(case when c.compliant then 1 else 0 end) as compliant,
        (
            sum(case when c.compliant then 0 else 1 end)
            + {{ var('store_plan_display_prior_checks') }} * max(f.failed_share)
        ) / (count(*) + {{ var('store_plan_display_prior_checks') }}) as room
    from display_checks as c
    cross join (
        select avg(case when compliant then 0.0 else 1.0 end) as failed_share
        from display_checks
    ) as f
    group by 1
),

display_candidates as (
    select
        b.store_code,
        'display_upgrade' as activity,
        b.units_per_day * {{ horizon_days }} * d.room as exposed_units,
        b.units_per_day * b.price * {{ horizon_days }} * d.room as exposed_yuan,
        d.checks,
        d.compliant
    from baseline as b
    inner join display_room as d on b.store_code = d.store_code
    where d.compliant < d.checks
),

redeeming as (
    select distinct c.redeemed_store_code as store_code
    from {{ ref('fct_coupons') }} as c
    cross join as_of as a
    where
        c.redeemed
        and {{ in_trailing_window('c.redeemed_date', var('store_plan_coupon_days')) }}
),

coupon_candidates as (
    select
        b.store_code,
        'coupon_redemption_point' as activity,
        b.units_per_day / c.n * {{ horizon_days }} * {{ var('store_plan_coupon_coverage') }}
            as exposed_units,
        b.units_per_day * b.price / c.n * {{ horizon_days }}
        * {{ var('store_plan_coupon_coverage') }} as exposed_yuan
    from baseline as b
    cross join categories as c
    where b.store_code not in (select r.store_code from redeeming as r)
),

group_candidates as (
    select
        b.store_code,
        'community_group_push' as activity,
        b.units_per_day * {{ horizon_days }} as exposed_units,
        b.units_per_day * b.price * {{ horizon_days }} as exposed_yuan
    from baseline as b
    where b.store_code not in (
            select g.store_code from {{ ref('stg_cdp__community_groups') }} as g
        )
),

measured as (
    select
        c.store_code,
        c.activity,
        c.exposed_units * e.relative_lift as expected_units,
        c.exposed_yuan * e.relative_lift as expected_yuan,
        e.segment,
        e.relative_lift,
        e.ci_low,
        e.ci_high,
        e.treated_stores,
        e.control_stores,
        e.evidence_start,
        e.evidence_end,
        c.detail_count,
        c.detail_total,
        c.detail_ids
    from (
        select
            store_code,
            activity,
            exposed_units,
            exposed_yuan,
            promotions as detail_count,
            cast(null as integer) as detail_total,
            promo_ids as detail_ids
        from promo_candidates
        union all
        select
            store_code,
            activity,
            exposed_units,
            exposed_yuan,
            compliant as detail_count,
            checks as detail_total,
            null as detail_ids
        from display_candidates
        union all
        select
            store_code,
            activity,
            exposed_units,
            exposed_yuan,
            null as detail_count,
            null as detail_total,
            null as detail_ids
        from coupon_candidates
        union all
        select
            store_code,
            activity,
            exposed_units,
            exposed_yuan,
            null as detail_count,
            null as detail_total,
            null as detail_ids
        from group_candidates
    ) as c
    inner join chosen as e on c.store_code = e.store_code and c.activity = e.activity
    where c.exposed_units > 0
),

-- new products: the SKU's share of its category's units since launch, all stores
new_products as (
    select
        p.sku_code,
        p.sku_name,
        p.category,
        p.list_price,
        p.launch_date
    from {{ ref('dim_product') }} as p
    cross join as_of as a
    where {{ in_trailing_window('p.launch_date', var('store_plan_new_product_days')) }}
),

new_product_share as (
    select
        n.sku_code,
        sum(case when o.sku_code = n.sku_code then o.qty_delivered else 0 end)
        / nullif(sum(o.qty_delivered), 0) as category_share
    from new_products as n
    inner join {{ ref('dim_product') }} as p on n.category = p.category
    inner join {{ ref('fct_store_orders') }} as o
        on p.sku_code = o.sku_code and o.order_date >= n.launch_date
    group by 1
),

-- a store's units in a category: its own total x the category's share in its region (a
-- store's own per-category units are a noisier estimate of the same)
category_baseline as (
    select
        b.store_code,
        rc.category,
        b.units_per_day * rc.units_per_day / r.units_per_day as units_per_day
    from baseline as b
    inner join stores as st on b.store_code = st.store_code
    inner join (
        select
            st2.region,
            p.category,
            sum(bs.units_per_day) as units_per_day
        from baseline_sku as bs
        inner join stores as st2 on bs.store_code = st2.store_code
        inner join {{ ref('dim_product') }} as p on bs.sku_code = p.sku_code
        group by 1, 2
    ) as rc on st.region = rc.region
    inner join (
        select
            st3.region,
            sum(bs.units_per_day) as units_per_day
        from baseline_sku as bs
        inner join stores as st3 on bs.store_code = st3.store_code
        group by 1
    ) as r on st.region = r.region
),

trial_scores as (
    select
        cb.store_code,
        n.sku_code,
        n.sku_name,
        n.category,
        cb.units_per_day * s.category_share * {{ horizon_days }} as expected_units,
        cb.units_per_day * s.category_share * {{ horizon_days }} * n.list_price as expected_yuan,
        percent_rank() over (
            partition by n.sku_code order by cb.units_per_day * s.category_share
        ) as store_rank,
        case n.category
            {% for category, scenario in scenarios.items() -%}
            when '{{ category }}' then '{{ scenario }}'
            {% endfor -%}
        end as scenario
    from new_products as n
    inner join new_product_share as s on n.sku_code = s.sku_code
    inner join category_baseline as cb on n.category = cb.category
    where s.category_share > 0
),

segment_consumers as (
    select
        ss.store_code,
        substr(t.tag, length('scenario_user:') + 1) as scenario,
        count(distinct ss.consumer_id) as consumers
    from {{ ref('user_tags') }} as t
    inner join {{ ref('fct_store_scans') }} as ss on t.entity_id = ss.consumer_id
    cross join as_of as a
    where
        t.tag like 'scenario_user:%'
        and {{ in_trailing_window('ss.scan_date', var('user_window_days')) }}
    group by 1, 2
),

trials as (
    select
        t.store_code,
        t.sku_code,
        t.sku_name,
        t.category,
        t.expected_units,
        t.expected_yuan,
        t.store_rank,
        t.scenario,
        coalesce(sc.consumers, 0) as segment_consumers,
        row_number() over (partition by t.store_code order by t.expected_units desc) as pick
    from trial_scores as t
    left join segment_consumers as sc
        on t.store_code = sc.store_code and t.scenario = sc.scenario
    where t.store_rank >= 1 - {{ var('store_plan_core_store_share') }}
),

proposals as (
    select
        m.store_code,
        m.activity,
        m.expected_units,
        m.expected_yuan,
        m.segment,
        m.relative_lift,
        m.ci_low,
        m.ci_high,
        m.treated_stores,
        m.control_stores,
        m.evidence_start,
        m.evidence_end,
        m.detail_count,
        m.detail_total,
        m.detail_ids,
        cast(null as varchar) as sku_code,
        cast(null as varchar) as sku_name,
        cast(null as varchar) as category,
        cast(null as double) as store_rank,
        cast(null as varchar) as scenario,
        cast(null as integer) as segment_consumers
    from measured as m
    union all
    select
        store_code,
        'new_product_trial' as activity,
        expected_units,
        expected_yuan,
        null as segment,
        null as relative_lift,
        null as ci_low,
        null as ci_high,
        null as treated_stores,
        null as control_stores,
        null as evidence_start,
        null as evidence_end,
        null as detail_count,
        null as detail_total,
        null as detail_ids,
        sku_code,
        sku_name,
        category,
        store_rank,
        scenario,
        segment_consumers
    from trials
    where pick = 1 and expected_units > 0
),

ranked as (
    select
        p.*,
        row_number() over (
            partition by p.store_code
            order by
                case when p.activity = 'new_product_trial' then 1 else 0 end,
                p.expected_units desc,
                p.activity
        ) as activity_rank
    from proposals as p
)

{% set weeks = var('store_plan_horizon_weeks') %}
{% set units = 'cast(round(r.expected_units, 1) as varchar)' %}
{% set lift_pct = 'cast(round(r.relative_lift * 100, 1) as varchar)' %}
{% set ci = "cast(round(r.ci_low * 100, 1) as varchar) || '%~' || cast(round(r.ci_high * 100, 1) as varchar) || '%'" %}
select
    r.store_code,
    st.region as region_code,
    st.distributor_code,
    st.channel_type,
    st.city_tier,
    a.as_of_date,
    cast({{ dbt.dateadd('day', 1, 'a.as_of_date') }} as date) as plan_start,
    cast({{ dbt.dateadd('day', horizon_days, 'a.as_of_date') }} as date) as plan_end,
    r.activity_rank as rank,
    r.activity,
    round(r.expected_units, 2) as expected_incremental_units,
    round(r.expected_yuan, 2) as expected_incremental_yuan,
    r.segment as evidence_segment,
    r.relative_lift as evidence_relative_lift,
    r.ci_low as evidence_ci_low,
    r.ci_high as evidence_ci_high,
    r.treated_stores as evidence_treated_stores,
    r.control_stores as evidence_control_stores,
    r.detail_ids as promo_ids,
    r.sku_code as trial_sku_code,
    r.scenario as trial_consumer_segment,
    r.segment_consumers as trial_segment_consumers,
    case
        when r.activity = 'new_product_trial'
            then 'store units x region category share x the SKU''s category share; top '
                || cast({{ reason_top_pct('r.store_rank') }} as varchar)
                || '% of stores'
        else 'DiD ' || r.activity || ' [' || r.segment || ']: lift '
            || {{ lift_pct }} || '% (95% CI ' || {{ ci }} || '), '
            || cast(r.treated_stores as varchar) || ' treated / '
            || cast(r.control_stores as varchar) || ' control stores, '
            || cast(r.evidence_start as varchar) || '..' || cast(r.evidence_end as varchar)
    end as evidence,
    case r.activity
        when 'promotion_signup'
            then '报名未来{{ weeks }}周内本区域' || cast(r.detail_count as varchar)
                || '个尚未参加的促销；同类门店（' || r.segment || '）报名后促销SKU销量提升'
                || {{ lift_pct }} || '%，预计增量' || {{ units }} || '件'
        when 'display_upgrade'
            then '近{{ var("store_plan_display_months") }}个月陈列检查'
                || cast(r.detail_total as varchar) || '次仅' || cast(r.detail_count as varchar)
                || '次达标；同类门店（' || r.segment || '）陈列达标后销量提升' || {{ lift_pct }}
                || '%，预计增量' || {{ units }} || '件'
        when 'coupon_redemption_point'
            then '近期无券核销；同类门店（' || r.segment
                || '）成为核销门店后券品类销量提升' || {{ lift_pct }} || '%，预计增量'
                || {{ units }} || '件'
        when 'community_group_push'
            then '尚无社群；同类门店（' || r.segment
                || '）开群推送后销量提升' || {{ lift_pct }} || '%，预计增量' || {{ units }} || '件'
        else '新品' || r.sku_name || '试销核心门店（' || r.category || '销量位列前'
            || cast({{ reason_top_pct('r.store_rank') }} as varchar)
            || '%），预计' || {{ weeks }} || '周销' || {{ units }} || '件；匹配人群'
            || coalesce(r.scenario, '大众') || '（本店' || cast(r.segment_consumers as varchar)
            || '人）'
    end as reason_zh,
    case r.activity
        when 'promotion_signup'
            then 'Sign up to ' || cast(r.detail_count as varchar)
                || ' promotions of the region in the next {{ weeks }} weeks: in ' || r.segment
                || ' stores a sign-up lifted the SKU''s units by ' || {{ lift_pct }}
                || '%; about ' || {{ units }} || ' more units'
        when 'display_upgrade'
            then 'Display compliant in only ' || cast(r.detail_count as varchar)
                || ' of ' || cast(r.detail_total as varchar) || ' checks in {{ var("store_plan_display_months") }}'
                || ' months: in ' || r.segment || ' stores a compliant display lifted units by '
                || {{ lift_pct }} || '%; about ' || {{ units }} || ' more units'
        when 'coupon_redemption_point'
            then 'No coupon redeemed here lately: in ' || r.segment
                || ' stores redeeming coupons lifted the category''s units by ' || {{ lift_pct }}
                || '%; about ' || {{ units }} || ' more units'
        when 'community_group_push'
            then 'No community group yet: in ' || r.segment
                || ' stores opening a group lifted units by ' || {{ lift_pct }}
                || '%; about ' || {{ units }} || ' more units'
        else 'Trial the new ' || r.sku_code || ' here, a core store (top '
            || cast({{ reason_top_pct('r.store_rank') }} as varchar)
            || '% for ' || r.category || '): about ' || {{ units }} || ' units in {{ weeks }} weeks;'
            || ' target segment ' || coalesce(r.scenario, 'all shoppers') || ' ('
            || cast(r.segment_consumers as varchar) || ' here)'
    end as reason_en
from ranked as r
inner join stores as st on r.store_code = st.store_code
cross join as_of as a
