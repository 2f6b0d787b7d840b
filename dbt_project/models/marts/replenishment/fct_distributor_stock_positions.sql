-- Stock position of every distributor x SKU that its stores sell or that the brand
-- ships to it, at the as-of date. DMS exports carry no distributor stock count, so stock
-- is the flow balance (进销存): units shipped in minus units delivered to stores over the
-- whole history, floored at 0. Lead time is the median days from order to shipment + 1
-- day on the road (4 days when the distributor has no shipments); promotion days are the
-- most any of its stores signed from as_of - 6 to as_of + 13; orders are whole cases.
with run as (
    select as_of from {{ ref('as_of_date') }}
),

pairs as (
    select distinct
        s.distributor_code,
        f.sku_code
    from {{ ref('fct_sell_through') }} as f
    inner join {{ ref('dim_store') }} as s on f.store_code = s.store_code
    union
    select distinct
        distributor_code,
        sku_code
    from {{ ref('fct_shipments') }}
),

movements as (
    select
        sh.distributor_code,
        sh.sku_code,
        sh.qty_shipped_units as units
    from {{ ref('fct_shipments') }} as sh
    cross join run as r
    where sh.ship_date < r.as_of
    union all
    select
        o.distributor_code,
        o.sku_code,
        -o.qty_delivered as units
    from {{ ref('fct_store_orders') }} as o
    cross join run as r
    where o.delivery_date < r.as_of
),

flows as (
    select
        distributor_code,
        sku_code,
        sum(units) as balance
    from movements
    group by distributor_code, sku_code
),

lead_times as (
    select
        distributor_code,
        median(ship_date - order_date) + 1 as lead_days
    from {{ ref('fct_shipments') }}
    group by distributor_code
),

promotions as (
    select
        s.distributor_code,
        p.sku_code,
        max(p.promo_days) as promo_days
    from {{ ref('fct_promotions_store_sku_week') }} as p
    inner join {{ ref('dim_store') }} as s on p.store_code = s.store_code
    cross join run as r
    where p.week_start between r.as_of - 6 and r.as_of + 13
    group by s.distributor_code, p.sku_code
)

select
    k.distributor_code,
    k.sku_code,
    d.region,
    r.as_of,
    greatest(0, coalesce(f.balance, 0)) as on_hand,
    0 as on_order,
    coalesce(l.lead_days, 4) as lead_days,
    coalesce(pr.promo_days, 0) as promo_days,
    p.case_pack as order_multiple,
    p.case_pack as moq
from pairs as k
inner join {{ ref('dim_distributor') }} as d on k.distributor_code = d.distributor_code
inner join {{ ref('dim_product') }} as p on k.sku_code = p.sku_code
cross join run as r
left join flows as f on k.distributor_code = f.distributor_code and k.sku_code = f.sku_code
left join lead_times as l on k.distributor_code = l.distributor_code
left join promotions as pr on k.distributor_code = pr.distributor_code and k.sku_code = pr.sku_code
