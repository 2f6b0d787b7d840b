-- One row per coupon campaign: its arms, observed lift and whether the uplift model can
-- learn from it. Not learnable (reason in Chinese and English, the first that applies):
-- no members, no hold-out, a consumer in both arms, a coupon redeemed before it was
-- issued, a coupon given to a held-out consumer, a window not over by the newest data,
-- or an arm smaller than `marketing_min_arm_size` (dbt_project.yml).
with as_of as (
    select max(scan_date) as as_of_date from {{ ref('fct_store_scans') }}
),

-- staging keeps one row per campaign x consumer, so a consumer listed in both arms shows
-- only in the exported rows themselves
member_arms as (
    select
        campaign_id,
        consumer_id,
        count(distinct arm) as arms
    from {{ source('cdp', 'campaign_members') }}
    group by 1, 2
),

both_arms as (
    select
        campaign_id,
        count(*) as consumers_in_both_arms
    from member_arms
    where arms > 1
    group by 1
),

arms as (
    select
        campaign_id,
        count(*) as members,
        sum(case when arm = 'treated' then 1 else 0 end) as treated,
        sum(case when arm = 'holdout' then 1 else 0 end) as holdout,
        sum(case when arm = 'treated' and responded then 1 else 0 end) as treated_responders,
        sum(case when arm = 'holdout' and responded then 1 else 0 end) as holdout_responders
    from {{ ref('fct_campaign_responses') }}
    group by 1
),

coupons as (
    select
        cp.campaign_id,
        count(*) as coupons,
        sum(case when cp.redeemed then 1 else 0 end) as coupons_redeemed,
        sum(
            case when cp.redeemed_date < cp.issued_date then 1 else 0 end
        ) as redeemed_before_issue,
        sum(case when m.arm = 'holdout' then 1 else 0 end) as holdout_coupons
    from {{ ref('fct_coupons') }} as cp
    left join {{ ref('stg_cdp__campaign_members') }} as m
        on cp.campaign_id = m.campaign_id and cp.consumer_id = m.consumer_id
    group by 1
),

counted as (
    select
        c.campaign_id,
        c.campaign_name,
        c.category,
        c.coupon_value,
        c.start_date,
        c.end_date,
        coalesce(a.members, 0) as members,
        coalesce(a.treated, 0) as treated,
        coalesce(a.holdout, 0) as holdout,
        coalesce(a.treated_responders, 0) as treated_responders,
        coalesce(a.holdout_responders, 0) as holdout_responders,
        coalesce(cp.coupons, 0) as coupons,
        coalesce(cp.coupons_redeemed, 0) as coupons_redeemed,
        coalesce(b.consumers_in_both_arms, 0) as consumers_in_both_arms,
        coalesce(cp.redeemed_before_issue, 0) as redeemed_before_issue,
        coalesce(cp.holdout_coupons, 0) as holdout_coupons,
        c.end_date <= ao.as_of_date as window_over
    from {{ ref('stg_cdp__campaigns') }} as c
    cross join as_of as ao
    left join arms as a on c.campaign_id = a.campaign_id
    left join both_arms as b on c.campaign_id = b.campaign_id
    left join coupons as cp on c.campaign_id = cp.campaign_id
),

judged as (
    select
        *,
        case
            when members = 0 then 'empty'
            when holdout = 0 then 'no_holdout'
            when consumers_in_both_arms > 0 then 'both_arms'
            when redeemed_before_issue > 0 then 'redeemed_before_issue'
            when holdout_coupons > 0 then 'holdout_coupons'
            when not window_over then 'not_over'
            when
                treated < {{ var('marketing_min_arm_size') }}
                or holdout < {{ var('marketing_min_arm_size') }}
                then 'small_arm'
        end as fault
    from counted
)

select
    campaign_id,
    campaign_name,
    category,
    coupon_value,
    start_date,
    end_date,
    members,
    treated,
    holdout,
    coupons,
    coupons_redeemed,
    consumers_in_both_arms,
    redeemed_before_issue,
    holdout_coupons,
    treated_responders * 1.0 / nullif(treated, 0) as treated_response_rate,
    holdout_responders * 1.0 / nullif(holdout, 0) as holdout_response_rate,
    treated_responders * 1.0 / nullif(treated, 0)
    - holdout_responders * 1.0 / nullif(holdout, 0) as observed_uplift,
    coupons_redeemed * 1.0 / nullif(coupons, 0) as redemption_rate,
    fault is null as learnable,
    fault,
    case fault
        when 'empty' then '活动没有成员'
        when 'no_holdout' then '活动没有对照组，无法衡量增量'
        when 'both_arms' then cast(consumers_in_both_arms as varchar) || '名消费者同时在实验组和对照组'
        when 'redeemed_before_issue' then cast(redeemed_before_issue as varchar) || '张券核销早于发放'
        when 'holdout_coupons' then '对照组有' || cast(holdout_coupons as varchar) || '人收到了券'
        when 'not_over' then '活动尚未结束，结果不完整'
        when 'small_arm' then '实验组或对照组人数少于' || '{{ var("marketing_min_arm_size") }}'
    end as reason_zh,
    case fault
        when 'empty' then 'The campaign has no members'
        when 'no_holdout' then 'No hold-out: the uplift cannot be measured'
        when 'both_arms'
            then cast(consumers_in_both_arms as varchar)
                || ' consumers are in both the treated and the hold-out arm'
        when 'redeemed_before_issue'
            then cast(redeemed_before_issue as varchar)
                || ' coupons were redeemed before they were issued'
        when 'holdout_coupons'
            then cast(holdout_coupons as varchar)
                || ' held-out consumers received a coupon'
        when 'not_over' then 'The campaign window is not over: its outcome is incomplete'
        when 'small_arm' then 'An arm has fewer than {{ var("marketing_min_arm_size") }} consumers'
    end as reason_en
from judged
