{{ config(
    materialized='incremental',
    unique_key='period_start',
    incremental_strategy='delete+insert',
) }}
-- KPIs that count distinct stores, consumers or cohorts, per month: they cannot be
-- summed from days, so each is computed at its grain here.
-- Incremental by month (retention, docs/privacy.md): with a retention cutoff, a run
-- rebuilds the months from the cutoff on and keeps the earlier months as they were built
-- while their detail was still in the lake (macros/retention.sql); user_growth counts
-- the users registered before a month from those kept new_users. A full refresh
-- recomputes every month, the early ones from anonymised rows.
{% set month_of = "cast(" ~ dbt.date_trunc('month', '{}') ~ " as date)" %}
with order_span as (
    select
        min(order_date) as first_order,
        max(order_date) as last_order
    from {{ ref('fct_store_orders') }}
),

months as (
    select distinct d.month_start
    from {{ ref('dim_date') }} as d
    inner join order_span as o on d.date_day between o.first_order and o.last_order
),

data_end as (
    select max(scan_date) as last_day from {{ ref('fct_product_scans') }}
),

active_stores as (
    select
        m.month_start,
        s.store_code,
        s.region,
        s.distributor_code
    from months as m
    inner join {{ ref('dim_store') }} as s
        on s.onboard_date is null or s.onboard_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
),

online as (  -- stores that reported POS data or took a mini-program order that month
    select distinct
        {{ month_of.format('biz_date') }} as month_start,
        store_code
    from {{ ref('fct_sell_through') }}
    union
    select distinct
        {{ month_of.format('scan_date') }} as month_start,
        store_code
    from {{ ref('fct_store_scans') }}
),

store_month as (
    select
        a.month_start,
        a.region,
        a.distributor_code,
        a.store_code,
        case when o.store_code is not null then 1 else 0 end as is_online
    from active_stores as a
    left join online as o on a.month_start = o.month_start and a.store_code = o.store_code
),

carried as (  -- 铺货: store x SKU pairs bought in the trailing 3 months
    select distinct
        m.month_start,
        o.store_code,
        o.sku_code
    from months as m
    inner join {{ ref('fct_store_orders') }} as o
        on o.order_date >= {{ dbt.dateadd('month', -2, 'm.month_start') }}
        and o.order_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
),

active_skus as (
    select
        m.month_start,
        count(*) as skus
    from months as m
    inner join {{ ref('dim_product') }} as p
        on p.launch_date is null or p.launch_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
    group by 1
),

coverage as (
    select
        a.month_start,
        a.region,
        a.distributor_code,
        a.store_code,
        count(c.sku_code) as carried
    from active_stores as a
    left join carried as c on a.month_start = c.month_start and a.store_code = c.store_code
    group by 1, 2, 3, 4
),

activity as (  -- any sign of life of a consumer: scans, orders, group interactions
    select
        consumer_id,
        scan_date as day
    from {{ ref('fct_product_scans') }}
    where consumer_id is not null
    union
    select
        consumer_id,
        scan_date as day
    from {{ ref('fct_store_scans') }}
    where consumer_id is not null
    union
    select
        consumer_id,
        interaction_date as day
    from {{ ref('stg_cdp__interactions') }}
),

retention as (
    {% for days in [7, 30, 90] %}
    select
        'retention_{{ days }}' as kpi,
        {{ month_of.format('c.register_date') }} as month_start,
        avg(
            case
                when exists (
                        select 1 as active
                        from activity as a
                        where
                            a.consumer_id = c.consumer_id
                            and a.day > c.register_date
                            and a.day <= {{ dbt.dateadd('day', days, 'c.register_date') }}
                    ) then 1.0
                else 0.0
            end
        ) as value
    from {{ ref('dim_consumer') }} as c
    cross join data_end as e
    where {{ dbt.dateadd('day', days, 'c.register_date') }} <= e.last_day
    group by 1, 2
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

buyers as (
    select
        {{ month_of.format('scan_date') }} as month_start,
        consumer_id,
        count(*) as orders
    from {{ ref('fct_store_scans') }}
    where consumer_id is not null
    group by 1, 2
),

active_consumers as (
    select
        {{ month_of.format('day') }} as month_start,
        count(distinct consumer_id) as consumers
    from activity
    group by 1
),

members as (
    select
        m.month_start,
        count(*) as members
    from months as m
    inner join {{ ref('stg_cdp__group_members') }} as g
        on g.join_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
    group by 1
),

interacting as (
    select
        {{ month_of.format('interaction_date') }} as month_start,
        count(distinct consumer_id) as consumers
    from {{ ref('stg_cdp__interactions') }}
    group by 1
),

registrations as (  -- months before the retention cutoff: as built (dormant users left)
    select
        {{ month_of.format('register_date') }} as month_start,
        count(*) as new_users
    from {{ ref('dim_consumer') }}
    group by 1
    {% if retention_cutoff() and is_incremental() -%}
    having {{ month_of.format('register_date') }} >= cast('{{ retention_cutoff() }}' as date)
    union all
    select
        period_start as month_start,
        cast(value as bigint) as new_users
    from {{ this }}
    where kpi = 'new_users' and period_start < cast('{{ retention_cutoff() }}' as date)
    {%- endif %}
),

registered_before as (
    select
        r.month_start,
        r.new_users,
        sum(r.new_users) over (order by r.month_start rows between unbounded preceding and 1 preceding)
            as before
    from registrations as r
),

sell_in as (
    select
        {{ month_of.format('ship_date') }} as month_start,
        region,
        sum(amount) as amount
    from {{ ref('fct_shipments') }}
    group by 1, 2
),

share as (
    select
        ms.month,
        g.region,
        avg(ms.brand_share) as brand_share
    from {{ ref('stg_market__market_share') }} as ms
    inner join (
        select distinct
            province,
            region
        from {{ ref('geo_cities') }}
    ) as g
        on ms.province = g.province
    group by 1, 2
),

launches as (  -- first 180 days of units per SKU launched while we have data
    select
        p.sku_code,
        p.category,
        {{ month_of.format('p.launch_date') }} as month_start,
        sum(o.qty_delivered) as units
    from {{ ref('dim_product') }} as p
    cross join data_end as e
    cross join order_span as os
    inner join {{ ref('fct_store_orders') }} as o
        on o.sku_code = p.sku_code
        and o.order_date >= p.launch_date
        and o.order_date < {{ dbt.dateadd('day', 180, 'p.launch_date') }}
    where
        p.launch_date >= os.first_order
        and {{ dbt.dateadd('day', 180, 'p.launch_date') }} <= e.last_day
    group by 1, 2, 3
),

peers as (  -- what a SKU of the category sells in a typical 180 days
    select
        p.category,
        percentile_cont(0.5) within group (order by u.units) * 180.0 / 365 as typical_units
    from (
        select
            o.sku_code,
            sum(o.qty_delivered) as units
        from {{ ref('fct_store_orders') }} as o
        cross join order_span as os
        where o.order_date > {{ dbt.dateadd('day', -365, 'os.last_order') }}
        group by 1
    ) as u
    inner join {{ ref('dim_product') }} as p on u.sku_code = p.sku_code
    group by 1
),

campaign_lift as (
    select
        c.campaign_id,
        {{ month_of.format('c.start_date') }} as month_start,
        avg(case when c.arm = 'treated' then c.order_amount end)
        - avg(case when c.arm = 'holdout' then c.order_amount end) as lift_per_member,
        sum(case when c.arm = 'treated' then 1 else 0 end) as treated,
        sum(case when c.redeemed_coupon then c.coupon_value else 0 end) as coupon_cost
    from {{ ref('fct_campaign_responses') }} as c
    group by 1, 2
),

rewarded as (  -- stores paid by a store incentive programme in the month (门店激励参与)
    select distinct
        statement_month as month_start,
        payee_code as store_code
    from {{ ref('fct_incentive_statement_lines') }}
    where payee_type = 'store' and amount_payable > 0
),

store_incentive as (
    select
        a.month_start,
        a.region,
        a.distributor_code,
        case when r.store_code is not null then 1 else 0 end as is_rewarded
    from active_stores as a
    left join rewarded as r on a.month_start = r.month_start and a.store_code = r.store_code
),

incentive_effect as (  -- by the month a programme period ends
    select
        {{ month_of.format('period_end') }} as month_start,
        sum(cost) as cost,
        sum(case when incremental_units > 0 then incremental_units else 0 end) as incremental_units,
        sum(case when incremental_units > 0 then cost * roi else 0 end) as incremental_value
    from {{ ref('fct_incentive_programme_effect') }}
    group by 1
),

kpis as (
    {% set scopes = [('company', "'all'"), ('region', 'region'), ('distributor', 'distributor_code')] %}
    {% for scope, column in scopes %}
    select
        'channel_online_rate' as kpi,
        'month' as grain,
        month_start as period_start,
        '{{ scope }}' as scope_type,
        {{ column }} as scope_id,
        avg(is_online * 1.0) as value
    from store_month
    group by 4, 5, 3
    union all
    select
        'distribution_coverage' as kpi,
        'month' as grain,
        c.month_start as period_start,
        '{{ scope }}' as scope_type,
        {{ column }} as scope_id,
        sum(c.carried) * 1.0 / nullif(count(*) * max(k.skus), 0) as value
    from coverage as c
    inner join active_skus as k on c.month_start = k.month_start
    group by 4, 5, 3
    union all
    select
        'incentive_participation' as kpi,
        'month' as grain,
        month_start as period_start,
        '{{ scope }}' as scope_type,
        {{ column }} as scope_id,
        avg(is_rewarded * 1.0) as value
    from store_incentive
    group by 4, 5, 3
    union all
    {% endfor %}

    select
        'incentive_cost_per_incremental_unit' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        cost / nullif(incremental_units, 0) as value
    from incentive_effect

    union all

    select
        'incentive_roi' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        incremental_value / nullif(cost, 0) as value
    from incentive_effect

    union all

    select
        kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        value
    from retention

    union all

    select
        'repurchase_rate' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        avg(case when orders >= 2 then 1.0 else 0.0 end) as value
    from buyers
    group by 3

    union all

    select
        'referral_rate' as kpi,
        'month' as grain,
        a.month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        count(r.referral_id) * 1.0 / max(a.consumers) as value
    from active_consumers as a
    left join {{ ref('stg_cdp__referrals') }} as r
        on {{ month_of.format('r.referral_date') }} = a.month_start
    group by 3

    union all

    select
        'private_domain_activity' as kpi,
        'month' as grain,
        m.month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        coalesce(i.consumers, 0) * 1.0 / m.members as value
    from members as m
    left join interacting as i on m.month_start = i.month_start

    union all

    select
        'user_growth' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        new_users * 1.0 / before as value
    from registered_before
    where before > 0

    union all

    select
        'new_users' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        new_users * 1.0 as value
    from registrations

    union all

    select
        'profile_completeness' as kpi,
        'month' as grain,
        {{ month_of.format('register_date') }} as period_start,
        'company' as scope_type,
        'all' as scope_id,
        avg(profile_completeness) as value
    from {{ ref('dim_consumer') }}
    group by 3

    union all

    select
        'sales_growth' as kpi,
        'month' as grain,
        cur.month_start as period_start,
        'region' as scope_type,
        cur.region as scope_id,
        cur.amount / prev.amount - 1 as value
    from sell_in as cur
    inner join sell_in as prev
        on prev.region = cur.region
        and prev.month_start = {{ dbt.dateadd('month', -12, 'cur.month_start') }}

    union all

    select
        'market_share_change' as kpi,
        'month' as grain,
        cur.month as period_start,
        'region' as scope_type,
        cur.region as scope_id,
        cur.brand_share - prev.brand_share as value
    from share as cur
    inner join share as prev
        on prev.region = cur.region
        and prev.month = {{ dbt.dateadd('month', -1, 'cur.month') }}

    union all

    select
        'new_product_success' as kpi,
        'month' as grain,
        l.month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        avg(
            case
                when l.units >= {{ var('new_product_success_ratio') }} * pe.typical_units then 1.0
                else 0.0
            end
        ) as value
    from launches as l
    inner join peers as pe on l.category = pe.category
    group by 3

    union all

    select
        'marketing_roi' as kpi,
        'month' as grain,
        month_start as period_start,
        'company' as scope_type,
        'all' as scope_id,
        sum(lift_per_member * treated) / nullif(sum(coupon_cost), 0) as value
    from campaign_lift
    group by 3

    union all

    select
        'sell_through_amount' as kpi,
        'month' as grain,
        {{ month_of.format('f.biz_date') }} as period_start,
        'region' as scope_type,
        s.region as scope_id,
        sum(f.amount) as value
    from {{ ref('fct_sell_through') }} as f
    inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
    group by 3, 5

    union all

    select
        'sell_through_amount' as kpi,
        'month' as grain,
        {{ month_of.format('biz_date') }} as period_start,
        'company' as scope_type,
        'all' as scope_id,
        sum(amount) as value
    from {{ ref('fct_sell_through') }}
    group by 3
)

select
    kpi,
    grain,
    period_start,
    scope_type,
    scope_id,
    value
from kpis
where {{ period_to_build('period_start') }}
