-- The as-of dates consumer features are computed at, one row per snapshot_date x
-- consumer: the day before each campaign starts (its members, so nothing of the campaign
-- window or later reaches its features) and the newest day of store scans (every
-- consumer registered by then, for the next campaigns). home_store_code: the store the
-- consumer paid at most often in the trailing `marketing_window_days` (ties: lowest code).
with as_of as (
    select max(scan_date) as as_of_date from {{ ref('fct_store_scans') }}
),

snapshots as (
    select distinct
        cast({{ dbt.dateadd('day', -1, 'c.start_date') }} as date) as snapshot_date,
        m.consumer_id,
        false as is_newest
    from {{ ref('stg_cdp__campaign_members') }} as m
    inner join {{ ref('stg_cdp__campaigns') }} as c on m.campaign_id = c.campaign_id
    cross join as_of as a
    where c.start_date <= a.as_of_date

    union all

    select
        a.as_of_date as snapshot_date,
        c.consumer_id,
        true as is_newest
    from {{ ref('dim_consumer') }} as c
    cross join as_of as a
    where c.register_date <= a.as_of_date
),

-- a campaign may start the day after the newest data: one row per snapshot and consumer
deduped as (
    select
        snapshot_date,
        consumer_id,
        max(case when is_newest then 1 else 0 end) = 1 as is_newest
    from snapshots
    group by 1, 2
),

store_orders as (
    select
        s.snapshot_date,
        s.consumer_id,
        ss.store_code,
        count(*) as orders,
        sum(ss.order_amount) as order_amount,
        sum(case when ss.used_coupon then 1 else 0 end) as coupon_orders,
        max(ss.scan_date) as last_order_date
    from deduped as s
    inner join {{ ref('fct_store_scans') }} as ss
        on s.consumer_id = ss.consumer_id
        and ss.scan_date > {{ dbt.dateadd('day', -var('marketing_window_days'), 's.snapshot_date') }}
        and ss.scan_date <= s.snapshot_date
    group by 1, 2, 3
),

home as (
    select
        snapshot_date,
        consumer_id,
        store_code,
        row_number() over (
            partition by snapshot_date, consumer_id order by orders desc, store_code
        ) as pick
    from store_orders
),

totals as (
    select
        snapshot_date,
        consumer_id,
        sum(orders) as orders,
        sum(order_amount) as order_amount,
        sum(coupon_orders) as coupon_orders,
        count(*) as stores_visited,
        max(last_order_date) as last_order_date
    from store_orders
    group by 1, 2
)

select
    s.snapshot_date,
    s.consumer_id,
    s.is_newest,
    cast(
        {{ dbt.dateadd('day', -var('marketing_window_days') + 1, 's.snapshot_date') }} as date
    ) as window_start,
    h.store_code as home_store_code,
    coalesce(t.orders, 0) as orders,
    coalesce(t.order_amount, 0) as order_amount,
    coalesce(t.coupon_orders, 0) as coupon_orders,
    coalesce(t.stores_visited, 0) as stores_visited,
    t.last_order_date
from deduped as s
left join home as h
    on s.snapshot_date = h.snapshot_date and s.consumer_id = h.consumer_id and h.pick = 1
left join totals as t on s.snapshot_date = t.snapshot_date and s.consumer_id = t.consumer_id
