-- Store x week: order value and units bought from the distributor (every store orders,
-- not every store has a POS), display checks, promotion sign-ups and consumer scans
-- at the store. Every store has a row for every week from its onboarding on (zeros
-- where nothing happened), so trailing windows count weeks. The base of the channel tags.
with order_span as (
    select
        min(order_date) as first_order,
        max(order_date) as last_order
    from {{ ref('fct_store_orders') }}
),

weeks as (
    select distinct d.week_start
    from {{ ref('dim_date') }} as d
    inner join order_span as o on d.date_day between o.first_order and o.last_order
),

orders as (
    select
        store_code,
        cast({{ dbt.date_trunc('week', 'order_date') }} as date) as week_start,
        sum(amount) as order_amount,
        sum(qty_delivered) as units
    from {{ ref('fct_store_orders') }}
    group by 1, 2
),

checks as (
    select
        store_code,
        cast({{ dbt.date_trunc('week', 'check_date') }} as date) as week_start,
        count(*) as display_checks,
        sum(case when compliant then 1 else 0 end) as display_compliant
    from {{ ref('stg_dms__display_checks') }}
    group by 1, 2
),

store_scans as (
    select
        store_code,
        cast({{ dbt.date_trunc('week', 'scan_date') }} as date) as week_start,
        count(*) as store_scans
    from {{ ref('stg_code__store_scans') }}
    group by 1, 2
),

signups as (
    select
        store_code,
        cast({{ dbt.date_trunc('week', 'signup_date') }} as date) as week_start,
        count(*) as promo_signups
    from {{ ref('stg_dms__promotion_signups') }}
    group by 1, 2
)

select
    s.store_code,
    s.region,
    s.distributor_code,
    w.week_start,
    coalesce(o.order_amount, 0) as order_amount,
    coalesce(o.units, 0) as units,
    coalesce(c.display_checks, 0) as display_checks,
    coalesce(c.display_compliant, 0) as display_compliant,
    coalesce(sc.store_scans, 0) as store_scans,
    coalesce(sg.promo_signups, 0) as promo_signups
from {{ ref('dim_store') }} as s
cross join weeks as w
left join orders as o on s.store_code = o.store_code and w.week_start = o.week_start
left join checks as c on s.store_code = c.store_code and w.week_start = c.week_start
left join store_scans as sc on s.store_code = sc.store_code and w.week_start = sc.week_start
left join signups as sg on s.store_code = sg.store_code and w.week_start = sg.week_start
where s.onboard_date is null or s.onboard_date <= {{ dbt.dateadd('day', 6, 'w.week_start') }}
