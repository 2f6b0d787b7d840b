-- Additive parts of the ratio KPIs, one row per KPI x day x finest scope:
-- value = sum(numerator) / sum(denominator) at any grain and scope, so kpi_values can
-- roll a day up to a week, a month, a distributor or a region without bias.
select
    'display_compliance' as kpi,
    check_date as date_day,
    s.region,
    s.distributor_code,
    c.store_code,
    case when c.compliant then 1.0 else 0.0 end as numerator,
    1.0 as denominator
from {{ ref('stg_dms__display_checks') }} as c
inner join {{ ref('dim_store') }} as s on c.store_code = s.store_code

union all

-- 活动参与率: stores that signed up / stores in the promotion's region
select
    'campaign_participation' as kpi,
    p.start_date as date_day,
    p.region,
    null as distributor_code,
    null as store_code,
    (
        select count(*) as signups from {{ ref('stg_dms__promotion_signups') }} as g
        where g.promo_id = p.promo_id
    ) as numerator,
    (
        select count(*) as stores from {{ ref('dim_store') }} as s
        where s.region = p.region
    ) as denominator
from {{ ref('stg_dms__promotions') }} as p

union all

-- DSO: amount-weighted days from invoice to payment
select
    'dso' as kpi,
    pay_date as date_day,
    region,
    distributor_code,
    null as store_code,
    days_to_pay * amount as numerator,
    amount as denominator
from {{ ref('fct_payments') }}
where days_to_pay is not null

union all

select
    'store_satisfaction' as kpi,
    scan_date as date_day,
    region,
    distributor_code,
    store_code,
    rating as numerator,
    1.0 as denominator
from {{ ref('fct_store_scans') }}
where rating is not null

union all

select
    'aov' as kpi,
    scan_date as date_day,
    region,
    distributor_code,
    store_code,
    order_amount as numerator,
    1.0 as denominator
from {{ ref('fct_store_scans') }}
where order_amount is not null

union all

-- 扫码率: consumer scans of codes shipped to a distributor / units its stores received
select
    'scan_rate' as kpi,
    j.scan_date as date_day,
    d.region,
    j.distributor_code,
    null as store_code,
    1.0 as numerator,
    0.0 as denominator
from {{ ref('int_scan_journeys') }} as j
inner join {{ ref('dim_distributor') }} as d on j.distributor_code = d.distributor_code

union all

select
    'scan_rate' as kpi,
    o.delivery_date as date_day,
    s.region,
    o.distributor_code,
    null as store_code,
    0.0 as numerator,
    o.qty_delivered as denominator
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.delivery_date is not null

union all

-- 窜货发生率: scans that are evidence of a diversion alert not dismissed by review
-- (open, reopened, confirmed or penalised) / scans of known codes
select
    'diversion_rate' as kpi,
    j.scan_date as date_day,
    j.distributor_region as region,
    j.distributor_code,
    null as store_code,
    case when d.scan_id is not null then 1.0 else 0.0 end as numerator,
    1.0 as denominator
from {{ ref('int_scan_journeys') }} as j
left join (
    select distinct e.scan_id
    from {{ ref('fct_market_order_alert_scans') }} as e
    inner join {{ ref('fct_market_order_alerts') }} as a on e.alert_id = a.alert_id
    where a.kind = 'diversion' and a.status <> 'dismissed'
) as d on j.scan_id = d.scan_id
where j.code_known and j.signature_ok

union all

select
    'order_to_delivery_days' as kpi,
    o.order_date as date_day,
    s.region,
    o.distributor_code,
    o.store_code,
    o.days_to_deliver as numerator,
    1.0 as denominator
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.days_to_deliver is not null

union all

-- 按需配送覆盖率: order lines placed from the replenishment suggestion / order lines whose
-- source the DMS records
select
    'on_demand_coverage' as kpi,
    o.order_date as date_day,
    s.region,
    o.distributor_code,
    o.store_code,
    case when o.from_suggestion then 1.0 else 0.0 end as numerator,
    1.0 as denominator
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.from_suggestion is not null

union all

select
    'on_time_delivery' as kpi,
    o.order_date as date_day,
    s.region,
    o.distributor_code,
    o.store_code,
    case when o.days_to_deliver <= {{ var('on_time_delivery_days') }} then 1.0 else 0.0 end as numerator,
    1.0 as denominator
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.delivery_date is not null

union all

-- DC fill rate: units shipped against units distributors ordered
select
    'dc_fill_rate' as kpi,
    order_date as date_day,
    region,
    distributor_code,
    null as store_code,
    qty_shipped_units as numerator,
    qty_ordered_units as denominator
from {{ ref('fct_shipments') }}
where qty_ordered_units > 0

union all

-- brand warehouse stock against what it shipped: days of cover and yearly turns
select
    'inventory_days' as kpi,
    snapshot_date as date_day,
    region,
    null as distributor_code,
    null as store_code,
    on_hand_units as numerator,
    0.0 as denominator
from {{ ref('fct_dc_inventory') }}

union all

select
    'inventory_days' as kpi,
    ship_date as date_day,
    region,
    null as distributor_code,
    null as store_code,
    0.0 as numerator,
    qty_shipped_units as denominator
from {{ ref('fct_shipments') }}

union all

select
    'inventory_turnover' as kpi,
    ship_date as date_day,
    region,
    null as distributor_code,
    null as store_code,
    365.0 * qty_shipped_units as numerator,
    0.0 as denominator
from {{ ref('fct_shipments') }}

union all

select
    'inventory_turnover' as kpi,
    snapshot_date as date_day,
    region,
    null as distributor_code,
    null as store_code,
    0.0 as numerator,
    on_hand_units as denominator
from {{ ref('fct_dc_inventory') }}

union all

-- 精准营销转化率: coupons redeemed / coupons issued
select
    'targeted_conversion' as kpi,
    issued_date as date_day,
    null as region,
    null as distributor_code,
    null as store_code,
    case when redeemed then 1.0 else 0.0 end as numerator,
    1.0 as denominator
from {{ ref('fct_coupons') }}
