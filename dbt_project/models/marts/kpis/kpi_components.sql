-- Additive parts of the ratio KPIs, one row per KPI x day x finest scope:
-- value = sum(numerator) / sum(denominator) at any grain and scope, so kpi_values can
-- roll a day up to a week, a month, a distributor or a region without bias.
select
    'display_compliance' as kpi, check_date as date_day, s.region, s.distributor_code,
    c.store_code, case when c.compliant then 1.0 else 0.0 end as numerator, 1.0 as denominator
from {{ ref('stg_dms__display_checks') }} as c
inner join {{ ref('dim_store') }} as s on c.store_code = s.store_code

union all

-- 活动参与率: stores that signed up / stores in the promotion's region
select
    'campaign_participation', p.start_date, p.region, null, null,
    (select count(*) from {{ ref('stg_dms__promotion_signups') }} as g where g.promo_id = p.promo_id),
    (select count(*) from {{ ref('dim_store') }} as s where s.region = p.region)
from {{ ref('stg_dms__promotions') }} as p

union all

-- DSO: amount-weighted days from invoice to payment
select
    'dso', pay_date, region, distributor_code, null, days_to_pay * amount, amount
from {{ ref('fct_payments') }}
where days_to_pay is not null

union all

select
    'store_satisfaction', scan_date, region, distributor_code, store_code, rating, 1.0
from {{ ref('fct_store_scans') }}
where rating is not null

union all

select
    'aov', scan_date, region, distributor_code, store_code, order_amount, 1.0
from {{ ref('fct_store_scans') }}
where order_amount is not null

union all

-- 扫码率: consumer scans of codes shipped to a distributor / units its stores received
select
    'scan_rate', j.scan_date, d.region, j.distributor_code, null, 1.0, 0.0
from {{ ref('int_scan_journeys') }} as j
inner join {{ ref('dim_distributor') }} as d on j.distributor_code = d.distributor_code

union all

select
    'scan_rate', o.delivery_date, s.region, o.distributor_code, null, 0.0, o.qty_delivered
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.delivery_date is not null

union all

-- 窜货发生率: scans far from the region their case was shipped to / scans of known codes
select
    'diversion_rate', scan_date, distributor_region, distributor_code, null,
    case when is_cross_region then 1.0 else 0.0 end, 1.0
from {{ ref('int_scan_journeys') }}
where code_known and scan_region is not null

union all

select
    'order_to_delivery_days', o.order_date, s.region, o.distributor_code, o.store_code,
    o.days_to_deliver, 1.0
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.days_to_deliver is not null

union all

select
    'on_time_delivery', o.order_date, s.region, o.distributor_code, o.store_code,
    case when o.days_to_deliver <= {{ var('on_time_delivery_days') }} then 1.0 else 0.0 end, 1.0
from {{ ref('fct_store_orders') }} as o
inner join {{ ref('dim_store') }} as s on o.store_code = s.store_code
where o.delivery_date is not null

union all

-- brand warehouse stock against what it shipped: days of cover and yearly turns
select 'inventory_days', snapshot_date, region, null, null, on_hand_units, 0.0
from {{ ref('fct_dc_inventory') }}

union all

select 'inventory_days', ship_date, region, null, null, 0.0, qty_shipped_units
from {{ ref('fct_shipments') }}

union all

select 'inventory_turnover', ship_date, region, null, null, 365.0 * qty_shipped_units, 0.0
from {{ ref('fct_shipments') }}

union all

select 'inventory_turnover', snapshot_date, region, null, null, 0.0, on_hand_units
from {{ ref('fct_dc_inventory') }}

union all

-- 精准营销转化率: coupons redeemed / coupons issued
select 'targeted_conversion', issued_date, null, null, null,
    case when redeemed then 1.0 else 0.0 end, 1.0
from {{ ref('fct_coupons') }}
