-- Channel tags (渠道标签) at every week end: high-contribution, potential and slow-moving
-- stores, core distributors. One row per entity x tag x as-of date with a score and the
-- reason in words. Thresholds are dbt vars (dbt_project.yml), explained in docs/tags.md.
{% set window = var('tag_window_weeks') %}
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
    from {{ ref('int_store_weeks') }} as w
),

as_of as (
    select distinct week_start
    from {{ ref('int_store_weeks') }}
    order by week_start desc
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
    '近{{ window }}周进货额' || cast(round(amount / 10000.0, 1) as varchar) || '万元，位列前'
    || cast(greatest(1, cast(ceiling((1 - amount_rank) * 100) as integer)) as varchar) || '%' as reason,
    'Bought ' || cast(round(amount / 10000.0, 1) as varchar) || ' x10k CNY in {{ window }} weeks, top '
    || cast(greatest(1, cast(ceiling((1 - amount_rank) * 100) as integer)) as varchar) || '% of stores' as reason_en
from stores
where amount_rank >= 1 - {{ var('high_contribution_top_share') }}

union all

select
    'store',
    entity_id,
    'slow_moving_store',
    cast(as_of_date as date),
    1 - amount_rank,
    '近{{ window }}周进货额' || cast(round(amount / 10000.0, 1) as varchar) || '万元，位列后'
    || cast(greatest(1, cast(ceiling(amount_rank * 100) as integer)) as varchar) || '%，动销慢',
    'Bought only ' || cast(round(amount / 10000.0, 1) as varchar) || ' x10k CNY in {{ window }} weeks, bottom '
    || cast(greatest(1, cast(ceiling(amount_rank * 100) as integer)) as varchar) || '% of stores'
from stores
where amount_rank <= {{ var('slow_moving_bottom_share') }}

union all

select
    'store',
    entity_id,
    'potential_store',
    cast(as_of_date as date),
    engagement,
    '配合度指数' || cast(round(engagement, 2) as varchar)
    || '（陈列达标、参与促销、小程序活跃），进货额居中，有提升空间',
    'Engagement index ' || cast(round(engagement, 2) as varchar)
    || ' (display compliance, promotion sign-ups, mini program) with mid-range purchases: room to grow'
from stores
where amount_rank < 1 - {{ var('high_contribution_top_share') }}
    and amount_rank > {{ var('slow_moving_bottom_share') }}
    and engagement >= {{ var('potential_min_engagement') }}

union all

select
    'distributor',
    entity_id,
    'core_distributor',
    cast(as_of_date as date),
    amount_rank,
    '近{{ window }}周出库额' || cast(round(amount / 10000.0, 1) as varchar) || '万元，位列经销商前'
    || cast(greatest(1, cast(ceiling((1 - amount_rank) * 100) as integer)) as varchar) || '%',
    'Received ' || cast(round(amount / 10000.0, 1) as varchar) || ' x10k CNY of shipments in {{ window }} weeks, top '
    || cast(greatest(1, cast(ceiling((1 - amount_rank) * 100) as integer)) as varchar) || '% of distributors'
from distributor_ranks
where amount_rank >= 1 - {{ var('core_distributor_top_share') }}
