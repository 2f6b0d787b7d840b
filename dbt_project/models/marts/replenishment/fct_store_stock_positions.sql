-- Stock position of every store x SKU with sell-through, at the as-of date: the last
-- stock count of the 14 days before it, rolled forward by deliveries in and sales out
-- since; store orders in transit; the distributor's median delivery lead time (2 days
-- when it has no orders); signed promotion days from as_of - 6 to as_of + 13; and the
-- pack the store orders in. `on_hand` and `counted_on` are null without a recent count.
with run as (
    select as_of from {{ ref('as_of_date') }}
),

pairs as (
    select distinct
        store_code,
        sku_code
    from {{ ref('fct_sell_through') }}
),

counts as (
    select
        i.store_code,
        i.sku_code,
        i.snapshot_date,
        i.on_hand_units
    from {{ ref('fct_store_inventory') }} as i
    cross join run as r
    where i.snapshot_date between r.as_of - 14 and r.as_of - 1
    qualify
        row_number() over (
            partition by i.store_code, i.sku_code order by i.snapshot_date desc
        ) = 1
),

delivered as (
    select
        o.store_code,
        o.sku_code,
        sum(o.qty_delivered) as units
    from {{ ref('fct_store_orders') }} as o
    inner join counts as c
        on o.store_code = c.store_code and o.sku_code = c.sku_code
    where o.delivery_date > c.snapshot_date
    group by o.store_code, o.sku_code
),

sold as (
    select
        f.store_code,
        f.sku_code,
        sum(f.qty) as units
    from {{ ref('fct_sell_through') }} as f
    inner join counts as c
        on f.store_code = c.store_code and f.sku_code = c.sku_code
    where f.biz_date > c.snapshot_date
    group by f.store_code, f.sku_code
),

on_order as (
    select
        o.store_code,
        o.sku_code,
        sum(o.qty_delivered) as units
    from {{ ref('fct_store_orders') }} as o
    cross join run as r
    where o.order_date < r.as_of and o.delivery_date >= r.as_of
    group by o.store_code, o.sku_code
),

lead_times as (
    select
        distributor_code,
        median(delivery_date - order_date) as lead_days
    from {{ ref('fct_store_orders') }}
    group by distributor_code
),

promotions as (
    select
        p.store_code,
        p.sku_code,
        sum(p.promo_days) as promo_days
    from {{ ref('fct_promotions_store_sku_week') }} as p
    cross join run as r
    where p.week_start between r.as_of - 6 and r.as_of + 13
    group by p.store_code, p.sku_code
),

-- stores order inner packs, not cases: the greatest common divisor of the five most
-- common quantities a SKU is ordered in (ties broken by the smaller quantity)
common_quantities as (
    select
        sku_code,
        qty_ordered,
        row_number() over (
            partition by sku_code order by count(*) desc, qty_ordered
        ) as pick
    from {{ ref('fct_store_orders') }}
    where qty_ordered > 0
    group by sku_code, qty_ordered
    qualify pick <= 5
),

-- side by side, 0 where a SKU has fewer than five (gcd(q, 0) = q)
picked_quantities as (
    select
        sku_code,
        coalesce(max(case when pick = 1 then qty_ordered end), 0) as q1,
        coalesce(max(case when pick = 2 then qty_ordered end), 0) as q2,
        coalesce(max(case when pick = 3 then qty_ordered end), 0) as q3,
        coalesce(max(case when pick = 4 then qty_ordered end), 0) as q4,
        coalesce(max(case when pick = 5 then qty_ordered end), 0) as q5
    from common_quantities
    group by sku_code
),

order_multiples as (
    select
        sku_code,
        gcd(gcd(gcd(gcd(q1, q2), q3), q4), q5) as order_multiple
    from picked_quantities
)

select
    k.store_code,
    k.sku_code,
    s.region,
    s.distributor_code,
    r.as_of,
    c.snapshot_date as counted_on,
    case
        when c.snapshot_date is not null
            then greatest(0, c.on_hand_units + coalesce(d.units, 0) - coalesce(so.units, 0))
    end as on_hand,
    coalesce(oo.units, 0) as on_order,
    coalesce(l.lead_days, 2) as lead_days,
    coalesce(p.promo_days, 0) as promo_days,
    coalesce(m.order_multiple, 1) as order_multiple,
    coalesce(m.order_multiple, 1) as moq
from pairs as k
inner join {{ ref('dim_store') }} as s on k.store_code = s.store_code
cross join run as r
left join counts as c on k.store_code = c.store_code and k.sku_code = c.sku_code
left join delivered as d on k.store_code = d.store_code and k.sku_code = d.sku_code
left join sold as so on k.store_code = so.store_code and k.sku_code = so.sku_code
left join on_order as oo on k.store_code = oo.store_code and k.sku_code = oo.sku_code
left join lead_times as l on s.distributor_code = l.distributor_code
left join promotions as p on k.store_code = p.store_code and k.sku_code = p.sku_code
left join order_multiples as m on k.sku_code = m.sku_code
