-- User tags (用户标签) as of the newest activity date: high-value (RFM), price-sensitive,
-- scenario (学生/白领/家庭宝妈/银发) and new users, only for consumers whose latest
-- profile consent is given (a withdrawal removes every tag at the next build); the RFM
-- rank and the stores' promotion shares are aggregates over every consumer. Thresholds
-- are dbt vars, explained in docs/tags.md.
{% set scenarios = var('scenario_by_category') %}
{#- parameters of the reason texts (macros/reasons.sql), as SQL over each branch's rows -#}
{% set high_value = {
    'recency_days': 'recency_days', 'frequency': 'frequency',
    'monetary': 'round(monetary, 0)', 'top_pct': reason_top_pct('rfm_rank'),
} %}
{% set price_sensitive = {
    'promo_scans': 'p.promo_scans', 'scans': 'p.scans', 'index': 'round(p.promo_index, 1)',
} %}
{% set by_age = {'age': 's.age'} %}
{% set by_category = {'share_pct': 'round(s.share * 100, 0)', 'category': 's.category'} %}
{% set days_registered = dbt.datediff('c.register_date', 'a.as_of_date', 'day') %}
with as_of as (
    select max(scan_date) as as_of_date from {{ ref('fct_product_scans') }}
),

orders as (
    select
        ss.consumer_id,
        count(*) as orders,
        sum(ss.order_amount) as amount,
        max(ss.scan_date) as last_order
    from {{ ref('fct_store_scans') }} as ss
    cross join as_of as a
    where ss.consumer_id is not null
        and ss.scan_date > {{ dbt.dateadd('day', -var('user_window_days'), 'a.as_of_date') }}
        and ss.scan_date <= a.as_of_date
    group by 1
),

scans as (
    select
        ps.consumer_id,
        p.category,
        count(*) as scans,
        max(ps.scan_date) as last_scan
    from {{ ref('fct_product_scans') }} as ps
    cross join as_of as a
    inner join {{ ref('dim_product') }} as p on ps.sku_code = p.sku_code
    where ps.consumer_id is not null
        and ps.scan_date > {{ dbt.dateadd('day', -var('user_window_days'), 'a.as_of_date') }}
        and ps.scan_date <= a.as_of_date
    group by 1, 2
),

scan_totals as (
    select
        consumer_id,
        sum(scans) as scans,
        max(last_scan) as last_scan
    from scans
    group by 1
),

-- promotion buying against the home store's shoppers (the newest snapshot's promo_index):
-- the behaviour the coupon's measured uplift follows (docs/marketing.md)
promo as (
    select
        consumer_id,
        scans,
        promo_scans,
        promo_index
    from {{ ref('fct_marketing_features') }}
    where is_newest and promo_index is not null
),

rfm as (
    select
        c.consumer_id,
        a.as_of_date,
        coalesce(o.orders, 0) + coalesce(st.scans, 0) as frequency,
        coalesce(o.amount, 0) as monetary,
        {{ dbt.datediff(
            'greatest(coalesce(o.last_order, st.last_scan), coalesce(st.last_scan, o.last_order))',
            'a.as_of_date', 'day') }} as recency_days
    from {{ ref('dim_consumer') }} as c
    cross join as_of as a
    left join orders as o on c.consumer_id = o.consumer_id
    left join scan_totals as st on c.consumer_id = st.consumer_id
    where o.consumer_id is not null or st.consumer_id is not null
),

rfm_scored as (
    select
        *,
        (
            percent_rank() over (order by recency_days desc)
            + percent_rank() over (order by frequency)
            + percent_rank() over (order by monetary)
        ) / 3 as rfm
    from rfm
),

rfm_ranked as (
    select
        *,
        percent_rank() over (order by rfm) as rfm_rank
    from rfm_scored
),

category_share as (
    select
        s.consumer_id,
        s.category,
        s.scans * 1.0 / t.scans as share,
        t.scans as total_scans,
        row_number() over (partition by s.consumer_id order by s.scans desc, s.category) as pick
    from scans as s
    inner join scan_totals as t on s.consumer_id = t.consumer_id
),

ages as (
    select
        c.consumer_id,
        extract(year from a.as_of_date) - c.birth_year as age
    from {{ ref('dim_consumer') }} as c
    cross join as_of as a
    where c.consent_profile and c.birth_year is not null
),

scenario as (
    select
        coalesce(g.consumer_id, cs.consumer_id) as consumer_id,
        case
            when g.age <= {{ var('student_max_age') }} then '学生'
            when g.age >= {{ var('senior_min_age') }} then '银发'
            {% for category, name in scenarios.items() -%}
            when cs.category = '{{ category }}' then '{{ name }}'
            {% endfor -%}
        end as scenario,
        g.age,
        cs.category,
        cs.share
    from ages as g
    full outer join (
        select * from category_share
        where pick = 1
            and total_scans >= {{ var('scenario_min_scans') }}
            and share >= {{ var('scenario_category_share') }}
    ) as cs on g.consumer_id = cs.consumer_id
),

tagged as (
    select
        'user' as entity_type,
        consumer_id as entity_id,
        'high_value_user' as tag,
        cast(as_of_date as date) as as_of_date,
        rfm_rank as score,
        {{ tag_reason('high_value_user', 'zh', high_value) }} as reason,
        {{ tag_reason('high_value_user', 'en', high_value) }} as reason_en
    from rfm_ranked
    where rfm_rank >= 1 - {{ var('high_value_top_share') }}

    union all

    select
        'user' as entity_type,
        p.consumer_id as entity_id,
        'price_sensitive_user' as tag,
        cast(a.as_of_date as date) as as_of_date,
        1 - 1 / p.promo_index as score,
        {{ tag_reason('price_sensitive_user', 'zh', price_sensitive) }} as reason,
        {{ tag_reason('price_sensitive_user', 'en', price_sensitive) }} as reason_en
    from promo as p
    cross join as_of as a
    where p.promo_index >= {{ var('price_sensitive_promo_index') }}

    union all

    select
        'user' as entity_type,
        s.consumer_id as entity_id,
        'scenario_user:' || s.scenario as tag,
        cast(a.as_of_date as date) as as_of_date,
        coalesce(s.share, 1.0) as score,
        case
            when s.scenario in ('学生', '银发') and s.age is not null
                then {{ tag_reason('scenario_user_by_age', 'zh', by_age) }}
            else {{ tag_reason('scenario_user_by_category', 'zh', by_category) }}
        end as reason,
        case
            when s.scenario in ('学生', '银发') and s.age is not null
                then {{ tag_reason('scenario_user_by_age', 'en', by_age) }}
            else {{ tag_reason('scenario_user_by_category', 'en', by_category) }}
        end as reason_en
    from scenario as s
    cross join as_of as a
    where s.scenario is not null

    union all

    select
        'user' as entity_type,
        c.consumer_id as entity_id,
        'new_user' as tag,
        cast(a.as_of_date as date) as as_of_date,
        1 - {{ days_registered }} * 1.0 / {{ var('new_user_days') }} as score,
        {{ tag_reason('new_user', 'zh', {'days': days_registered}) }} as reason,
        {{ tag_reason('new_user', 'en', {'days': days_registered}) }} as reason_en
    from {{ ref('dim_consumer') }} as c
    cross join as_of as a
    where
        c.register_date > {{ dbt.dateadd('day', -var('new_user_days'), 'a.as_of_date') }}
        and c.register_date <= a.as_of_date
)

-- no user tag at all without profile consent (用户画像 needs it); the latest consent counts
select
    t.entity_type,
    t.entity_id,
    t.tag,
    t.as_of_date,
    t.score,
    t.reason,
    t.reason_en
from tagged as t
inner join {{ ref('dim_consumer') }} as c
    on t.entity_id = c.consumer_id and c.consent_profile
