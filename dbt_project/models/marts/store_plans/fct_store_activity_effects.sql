-- Store activity effects (一店一策的证据): one row per activity x store segment (channel x
-- city tier, plus a pooled 'all' row per activity), a difference-in-differences estimate
-- of the incremental POS units an activity brings. Each exposure compares a treated store's
-- units after the switch with its own weeks before (the pre weeks), scaled by how the
-- control stores of the same region and event changed over the same weeks:
--   promotion_signup  event = a promotion; treated = POS stores signed up, control = the
--                     region's POS stores not signed up; units of the promoted SKU; weeks
--                     on another promotion of the SKU are left out of the baseline.
--   display_upgrade   event = a region x month; treated = stores non-compliant last month
--                     and compliant this month, control = non-compliant both months.
--   coupon_redemption_point  event = a coupon campaign; treated = stores where one of its
--                     coupons was redeemed, control = every other POS store (a campaign
--                     runs brand-wide); units of the campaign's category.
--   community_group_push  event = a community group opening; treated = its store, control
--                     = the region's stores whose group status did not change meanwhile.
-- Relative lift = sum(incremental units) / sum(counterfactual units over the exposed
-- days), a ratio estimator clustered by store for its standard error. Thresholds are dbt
-- vars (store_plan_*), explained in docs/store_plans.md.
{% set pre_weeks = var('store_plan_pre_weeks') %}
{% set group_weeks = var('store_plan_group_weeks') %}
{% set z = var('store_plan_z') %}
with stores as (
    select
        store_code,
        region,
        channel_type,
        city_tier
    from {{ ref('dim_store') }}
),

sku_weeks as (
    select
        w.store_code,
        w.sku_code,
        p.category,
        w.week_start,
        w.qty
    from {{ ref('fct_sales_store_sku_week') }} as w
    inner join {{ ref('dim_product') }} as p on w.sku_code = p.sku_code
),

-- POS units per week at three grains, keyed by what an activity moves
units as (
    select
        store_code,
        sku_code as unit_key,
        week_start,
        qty
    from sku_weeks
    union all
    select
        store_code,
        category as unit_key,
        week_start,
        sum(qty) as qty
    from sku_weeks
    group by 1, 2, 3
    union all
    select
        store_code,
        'all' as unit_key,
        week_start,
        sum(qty) as qty
    from sku_weeks
    group by 1, 3
),

-- the weeks a store reported sell-through: an exposure counts only inside them
pos_span as (
    select
        sw.store_code,
        st.region,
        min(sw.week_start) as first_week,
        max(sw.week_start) as last_week
    from sku_weeks as sw
    inner join stores as st on sw.store_code = st.store_code
    group by 1, 2
),

promotions as (
    select
        p.promo_id,
        p.region,
        p.sku_code,
        p.start_date,
        p.end_date,
        cast({{ dbt.date_trunc('week', 'p.start_date') }} as date) as first_week,
        cast({{ dbt.date_trunc('week', 'p.end_date') }} as date) as last_week
    from {{ ref('stg_dms__promotions') }} as p
),

promo_exposures as (
    select
        'promotion_signup' as activity,
        p.promo_id as event_id,
        ps.region,
        ps.store_code,
        sg.store_code is not null as treated,
        p.sku_code as unit_key,
        cast({{ dbt.dateadd('day', -7 * pre_weeks, 'p.first_week') }} as date) as pre_start,
        cast({{ dbt.dateadd('day', -7, 'p.first_week') }} as date) as pre_end,
        p.first_week as post_start,
        p.last_week as post_end,
        {{ dbt.datediff('p.start_date', 'p.end_date', 'day') }} + 1 as exposure_days
    from promotions as p
    inner join pos_span as ps on p.region = ps.region
    left join {{ ref('stg_dms__promotion_signups') }} as sg
        on p.promo_id = sg.promo_id and ps.store_code = sg.store_code
),

check_months as (
    select
        store_code,
        cast({{ dbt.date_trunc('month', 'check_date') }} as date) as month_start,
        avg(case when compliant then 1.0 else 0.0 end) >= 0.5 as compliant
    from {{ ref('stg_dms__display_checks') }}
    group by 1, 2
),

display_switches as (
    select
        m.store_code,
        m.month_start,
        m.compliant as treated
    from check_months as m
    inner join check_months as prev
        on
        m.store_code = prev.store_code
        and prev.month_start = cast({{ dbt.dateadd('month', -1, 'm.month_start') }} as date)
    where not prev.compliant
),

-- whole weeks inside the switch month and inside the month before it
month_weeks as (
    select
        month_start,
        min(week_start) as first_week,
        max(week_start) as last_week
    from {{ ref('dim_date') }}
    where
        date_day = week_start
        and cast({{ dbt.date_trunc('month', dbt.dateadd('day', 6, 'week_start')) }} as date)
        = month_start
    group by 1
),

display_exposures as (
    select
        'display_upgrade' as activity,
        ps.region || ' ' || cast(d.month_start as varchar) as event_id,
        ps.region,
        d.store_code,
        d.treated,
        'all' as unit_key,
        prev.first_week as pre_start,
        prev.last_week as pre_end,
        cur.first_week as post_start,
        cur.last_week as post_end,
        {{ dbt.datediff('cur.first_week', 'cur.last_week', 'day') }} + 7 as exposure_days
    from display_switches as d
    inner join pos_span as ps on d.store_code = ps.store_code
    inner join month_weeks as cur on d.month_start = cur.month_start
    inner join month_weeks as prev
        on prev.month_start = cast({{ dbt.dateadd('month', -1, 'd.month_start') }} as date)
),

redemptions as (
    select
        campaign_id,
        redeemed_store_code as store_code,
        count(*) as coupons
    from {{ ref('fct_coupons') }}
    where redeemed
    group by 1, 2
),

coupon_exposures as (
    select
        'coupon_redemption_point' as activity,
        c.campaign_id as event_id,
        ps.region,
        ps.store_code,
        r.store_code is not null as treated,
        c.category as unit_key,
        cast({{ dbt.dateadd('day', -7 * pre_weeks, dbt.date_trunc('week', 'c.start_date')) }} as date)
            as pre_start,
        cast({{ dbt.dateadd('day', -7, dbt.date_trunc('week', 'c.start_date')) }} as date)
            as pre_end,
        cast({{ dbt.date_trunc('week', 'c.start_date') }} as date) as post_start,
        cast({{ dbt.date_trunc('week', 'c.end_date') }} as date) as post_end,
        {{ dbt.datediff('c.start_date', 'c.end_date', 'day') }} + 1 as exposure_days
    from {{ ref('stg_cdp__campaigns') }} as c
    cross join pos_span as ps
    left join redemptions as r on c.campaign_id = r.campaign_id and ps.store_code = r.store_code
),

groups as (
    select
        group_id,
        store_code,
        cast({{ dbt.date_trunc('week', 'created_date') }} as date) as created_week
    from {{ ref('stg_cdp__community_groups') }}
),

group_events as (
    select
        g.group_id,
        st.region,
        g.store_code,
        cast({{ dbt.dateadd('day', -7 * group_weeks, 'g.created_week') }} as date) as pre_start,
        cast({{ dbt.dateadd('day', -7, 'g.created_week') }} as date) as pre_end,
        g.created_week as post_start,
        cast({{ dbt.dateadd('day', 7 * (group_weeks - 1), 'g.created_week') }} as date)
            as post_end
    from groups as g
    inner join stores as st on g.store_code = st.store_code
),

group_exposures as (
    select
        'community_group_push' as activity,
        e.group_id as event_id,
        e.region,
        ps.store_code,
        ps.store_code = e.store_code as treated,
        'all' as unit_key,
        e.pre_start,
        e.pre_end,
        e.post_start,
        e.post_end,
        7 * {{ group_weeks }} as exposure_days
    from group_events as e
    inner join pos_span as ps on e.region = ps.region
    where ps.store_code = e.store_code
        or not exists (
            select o.group_id from groups as o
            where o.store_code = ps.store_code
                and o.created_week between e.pre_start and e.post_end
        )
),

exposures as (
    select * from promo_exposures
    union all
    select * from display_exposures
    union all
    select * from coupon_exposures
    union all
    select * from group_exposures
),

-- inside the store's reporting span only
in_span as (
    select e.*
    from exposures as e
    inner join pos_span as ps on e.store_code = ps.store_code
    where e.pre_start >= ps.first_week and e.post_end <= ps.last_week
),

-- weeks of a store's SKU on promotion, left out of that SKU's baseline (and a control
-- store on promotion during the post weeks is no control)
promo_overlap as (
    select
        e.activity,
        e.event_id,
        e.store_code,
        sum(case when pw.week_start <= e.pre_end then 1 else 0 end) as pre_promo_weeks,
        sum(case when pw.week_start >= e.post_start then 1 else 0 end) as post_promo_weeks
    from in_span as e
    inner join {{ ref('fct_promotions_store_sku_week') }} as pw
        on
        e.store_code = pw.store_code
        and e.unit_key = pw.sku_code
        and pw.week_start between e.pre_start and e.post_end
    where e.activity = 'promotion_signup'
    group by 1, 2, 3
),

measured as (
    select
        e.activity,
        e.event_id,
        e.region,
        e.store_code,
        e.treated,
        e.pre_start,
        e.post_end,
        e.exposure_days,
        e.pre_end,
        e.post_start,
        ({{ dbt.datediff('e.pre_start', 'e.pre_end', 'day') }} / 7 + 1)
        - coalesce(max(o.pre_promo_weeks), 0) as pre_weeks,
        {{ dbt.datediff('e.post_start', 'e.post_end', 'day') }} / 7 + 1 as post_weeks,
        coalesce(max(o.post_promo_weeks), 0) as post_promo_weeks,
        coalesce(sum(
            case
                when u.week_start <= e.pre_end and pw.week_start is null then u.qty else 0
            end
        ), 0) as pre_units,
        coalesce(sum(case when u.week_start >= e.post_start then u.qty else 0 end), 0)
            as post_units
    from in_span as e
    left join promo_overlap as o
        on e.activity = o.activity and e.event_id = o.event_id and e.store_code = o.store_code
    left join units as u
        on
        e.store_code = u.store_code
        and e.unit_key = u.unit_key
        and u.week_start between e.pre_start and e.post_end
    left join {{ ref('fct_promotions_store_sku_week') }} as pw
        on
        e.activity = 'promotion_signup'
        and e.store_code = pw.store_code
        and e.unit_key = pw.sku_code
        and u.week_start = pw.week_start
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
),

rates as (
    select
        activity,
        event_id,
        region,
        store_code,
        treated,
        pre_start,
        post_end,
        exposure_days,
        post_weeks,
        1.0 * pre_units / pre_weeks as pre_rate,
        1.0 * post_units / post_weeks as post_rate
    from measured
    where pre_weeks > 0 and pre_units > 0 and (treated or post_promo_weeks = 0)
),

control_trend as (
    select
        activity,
        event_id,
        sum(post_rate) / sum(pre_rate) as control_ratio
    from rates
    where not treated
    group by 1, 2
),

treated_exposures as (
    select
        r.activity,
        r.store_code,
        r.pre_start,
        r.post_end,
        r.exposure_days,
        c.control_ratio,
        (r.post_rate - r.pre_rate * c.control_ratio) * r.post_weeks as incremental_units,
        r.pre_rate * c.control_ratio * r.exposure_days / 7.0 as counterfactual_units
    from rates as r
    inner join control_trend as c on r.activity = c.activity and r.event_id = c.event_id
    where r.treated
),

controls as (
    select distinct
        activity,
        store_code
    from rates
    where not treated
),

per_store as (
    select
        t.activity,
        t.store_code,
        st.channel_type,
        st.city_tier,
        count(*) as events,
        sum(t.incremental_units) as incremental_units,
        sum(t.counterfactual_units) as counterfactual_units,
        sum(t.exposure_days) as exposure_days,
        min(t.pre_start) as evidence_start,
        max(t.post_end) as evidence_end
    from treated_exposures as t
    inner join stores as st on t.store_code = st.store_code
    group by 1, 2, 3, 4
),

segment_stores as (
    select
        activity,
        {{ store_segment('channel_type', 'city_tier') }} as segment,
        channel_type,
        city_tier,
        store_code,
        events,
        incremental_units,
        counterfactual_units,
        exposure_days,
        evidence_start,
        evidence_end
    from per_store
    union all
    select
        activity,
        'all' as segment,
        null as channel_type,
        null as city_tier,
        store_code,
        events,
        incremental_units,
        counterfactual_units,
        exposure_days,
        evidence_start,
        evidence_end
    from per_store
),

segments as (
    select
        activity,
        segment,
        channel_type,
        city_tier,
        count(*) as treated_stores,
        sum(events) as exposures,
        sum(incremental_units) as incremental_units,
        sum(counterfactual_units) as counterfactual_units,
        sum(exposure_days) as exposure_days,
        sum(incremental_units) / nullif(sum(counterfactual_units), 0) as relative_lift,
        min(evidence_start) as evidence_start,
        max(evidence_end) as evidence_end
    from segment_stores
    group by 1, 2, 3, 4
),

-- ratio estimator's variance, clustered by store: sum((y_i - R x_i)^2) / (n (n - 1)) / xbar^2
spread as (
    select
        s.activity,
        s.segment,
        sum(
            (ss.incremental_units - s.relative_lift * ss.counterfactual_units)
            * (ss.incremental_units - s.relative_lift * ss.counterfactual_units)
        ) as squares
    from segments as s
    inner join segment_stores as ss on s.activity = ss.activity and s.segment = ss.segment
    group by 1, 2
),

estimates as (
    select
        s.*,
        case
            when s.treated_stores > 1 and s.counterfactual_units > 0
                then sqrt(sp.squares / (s.treated_stores * (s.treated_stores - 1)))
                    / (s.counterfactual_units / s.treated_stores)
        end as std_error
    from segments as s
    inner join spread as sp on s.activity = sp.activity and s.segment = sp.segment
),

control_counts as (
    select
        activity,
        count(*) as control_stores
    from controls
    group by 1
)

select
    e.activity,
    e.segment,
    e.channel_type,
    e.city_tier,
    'difference-in-differences' as method,
    e.treated_stores,
    coalesce(c.control_stores, 0) as control_stores,
    cast(e.exposures as integer) as exposures,
    round(e.exposure_days / 7.0, 1) as exposed_store_weeks,
    round(e.counterfactual_units * 7.0 / e.exposure_days, 3) as baseline_units_per_store_week,
    round(e.incremental_units * 7.0 / e.exposure_days, 3) as incremental_units_per_store_week,
    round(e.relative_lift, 4) as relative_lift,
    round(e.std_error, 4) as std_error,
    round(e.relative_lift - {{ z }} * e.std_error, 4) as ci_low,
    round(e.relative_lift + {{ z }} * e.std_error, 4) as ci_high,
    coalesce(e.relative_lift - {{ z }} * e.std_error > 0, false) as significant,
    cast(e.evidence_start as date) as evidence_start,
    cast({{ dbt.dateadd('day', 6, 'e.evidence_end') }} as date) as evidence_end
from estimates as e
left join control_counts as c on e.activity = c.activity
