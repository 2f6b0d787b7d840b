-- Channel tags (渠道标签) at every week end: high-contribution, potential and slow-moving
-- stores, core distributors. One row per entity x tag x as-of date with a score and the
-- reason in Chinese and English (macros/reasons.sql). Thresholds are dbt vars
-- (dbt_project.yml), explained in docs/tags.md.
{% set window = var('tag_window_weeks') %}
{#- parameters of the reason texts (macros/reasons.sql), as SQL over the ranked rows -#}
{% set amount_10k = 'round(amount / 10000.0, 1)' %}
{% set high_contribution = {
    'weeks': window, 'amount_10k': amount_10k, 'top_pct': reason_top_pct('amount_rank'),
} %}
{% set slow_moving = {
    'weeks': window, 'amount_10k': amount_10k, 'bottom_pct': reason_bottom_pct('amount_rank'),
} %}
{% set potential = {'engagement': 'round(engagement, 2)'} %}
with store_windows as (
    select
        w.store_code,
        w.week_start,
        sum(w.order_amount) over (
            partition by w.store_code order by w.week_start
            rows between {{ window - 1 }} preceding and current row
        ) as amount,
        sum(w.display_checks) over (
            partition by w.store_code order by w.week_start
            rows between {{ window - 1 }} preceding and current row
        ) as checks,
        sum(w.display_compliant) over (
            partition by w.store_code order by w.week_start
            rows between {{ window - 1 }} preceding and current row
        ) as compliant,
        sum(w.promo_signups) over (
            partition by w.store_code order by w.week_start
            rows between {{ window - 1 }} preceding and current row
        ) as signups
    from {{ ref('fct_store_weeks') }} as w
),

as_of as (
    select distinct week_start
    from {{ ref('fct_store_weeks') }}
    order by 1 desc
    limit {{ var('tag_history_weeks') }}
),

stores as (
    select
        sw.store_code as entity_id,
        {{ dbt.dateadd('day', 6, 'sw.week_start') }} as as_of_date,
        sw.amount,
        percent_rank() over (partition by sw.week_start order by sw.amount) as amount_rank,
        0.5 * coalesce(sw.compliant * 1.0 / nullif(sw.checks, 0), 0)
        + 0.25 * case when sw.signups > 0 then 1 else 0 end
        + 0.25 * case when s.mini_program_active then 1 else 0 end as engagement
    from store_windows as sw
    inner join as_of as a on sw.week_start = a.week_start
    inner join {{ ref('dim_store') }} as s on sw.store_code = s.store_code
),

distributors as (
    select
        distributor_code as entity_id,
        {{ dbt.dateadd('day', 6, 'a.week_start') }} as as_of_date,
        sum(sh.amount) as amount
    from as_of as a
    inner join {{ ref('fct_shipments') }} as sh
        on sh.ship_date > {{ dbt.dateadd('day', -7 * window + 6, 'a.week_start') }}
        and sh.ship_date <= {{ dbt.dateadd('day', 6, 'a.week_start') }}
    group by 1, 2
),

distributor_ranks as (
    select
        entity_id,
        as_of_date,
        amount,
        percent_rank() over (partition by as_of_date order by amount) as amount_rank
    from distributors
)

select
    'store' as entity_type,
    entity_id,
    'high_contribution_store' as tag,
    cast(as_of_date as date) as as_of_date,
    amount_rank as score,
    {{ tag_reason('high_contribution_store', 'zh', high_contribution) }} as reason,
    {{ tag_reason('high_contribution_store', 'en', high_contribution) }} as reason_en
from stores
where amount_rank >= 1 - {{ var('high_contribution_top_share') }}

union all

select
    'store' as entity_type,
    entity_id,
    'slow_moving_store' as tag,
    cast(as_of_date as date) as as_of_date,
    1 - amount_rank as score,
    {{ tag_reason('slow_moving_store', 'zh', slow_moving) }} as reason,
    {{ tag_reason('slow_moving_store', 'en', slow_moving) }} as reason_en
from stores
where amount_rank <= {{ var('slow_moving_bottom_share') }}

union all

select
    'store' as entity_type,
    entity_id,
    'potential_store' as tag,
    cast(as_of_date as date) as as_of_date,
    engagement as score,
    {{ tag_reason('potential_store', 'zh', potential) }} as reason,
    {{ tag_reason('potential_store', 'en', potential) }} as reason_en
from stores
where
    amount_rank < 1 - {{ var('high_contribution_top_share') }}
    and amount_rank > {{ var('slow_moving_bottom_share') }}
    and engagement >= {{ var('potential_min_engagement') }}

union all

select
    'distributor' as entity_type,
    entity_id,
    'core_distributor' as tag,
    cast(as_of_date as date) as as_of_date,
    amount_rank as score,
    {{ tag_reason('core_distributor', 'zh', high_contribution) }} as reason,
    {{ tag_reason('core_distributor', 'en', high_contribution) }} as reason_en
from distributor_ranks
where amount_rank >= 1 - {{ var('core_distributor_top_share') }}
