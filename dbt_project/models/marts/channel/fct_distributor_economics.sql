-- Cost to serve and contribution per distributor over the channel window: its own margin
-- on what the DCs shipped it (ERP shipments at list price), the freight of those shipments
-- from its region's DC to its seat, an account visit a month and the rebates paid to it,
-- plus everything its stores cost (their delivery, visits, rebates and promotions, from
-- fct_store_economics). Unit costs come from config/channel.yaml as vars; docs/channel.md.
with bounds as (
    {{ channel_window() }}
),

cities as (
    select
        province,
        city,
        lat,
        lon
    from {{ ref('geo_cities') }}
),

-- the region's DC (the first by code when a region has several)
dcs as (
    select
        region,
        warehouse_code,
        lat,
        lon,
        row_number() over (partition by region order by warehouse_code) as nth
    from {{ ref('dim_warehouse') }}
    where warehouse_type = 'DC'
),

distributors as (
    select
        d.distributor_code,
        d.distributor_name,
        d.tier,
        d.region,
        d.province,
        d.city,
        c.lat is not null as city_known,
        c.lat as seat_lat,
        c.lon as seat_lon,
        w.warehouse_code as dc_code,
        {{ km_between('w.lat', 'w.lon', 'c.lat', 'c.lon') }} as km_from_dc
    from {{ ref('stg_dms__distributors') }} as d
    left join cities as c on d.province = c.province and d.city = c.city
    left join dcs as w on d.region = w.region and w.nth = 1
),

lines as (
    select
        s.distributor_code,
        s.shipment_id,
        s.ship_date,
        s.qty_shipped_units,
        s.qty_shipped_units * p.list_price as list_value,
        s.qty_shipped_units * p.list_price * {{ channel_margin_share('p.category') }} as margin,
        s.ship_date >= b.recent_start as is_recent
    from {{ ref('fct_shipments') }} as s
    cross join bounds as b
    left join {{ ref('dim_product') }} as p on s.sku_code = p.sku_code
    where
        s.qty_shipped_units > 0
        and s.ship_date >= b.window_start
        and s.ship_date < b.window_end
),

shipments as (
    select
        distributor_code,
        sum(qty_shipped_units) as sell_in_units,
        sum(coalesce(list_value, 0)) as revenue,
        sum(coalesce(margin, 0)) as gross_margin,
        sum(case when is_recent then coalesce(list_value, 0) else 0 end) as revenue_recent,
        sum(case when is_recent then coalesce(margin, 0) else 0 end) as gross_margin_recent,
        count(distinct ship_date) as shipments,
        count(distinct case when is_recent then ship_date end) as shipments_recent
    from lines
    group by distributor_code
),

own_rebates as (
    select
        r.payee_code as distributor_code,
        sum(r.amount) as rebates,
        sum(case when r.period_start >= b.recent_start then r.amount else 0 end)
            as rebates_recent
    from {{ ref('stg_dms__rebates') }} as r
    cross join bounds as b
    where
        r.payee_type = 'distributor'
        and r.period_start >= b.window_start
        and r.period_start < b.window_end
    group by r.payee_code
),

store_costs as (
    select
        distributor_code,
        count(*) as stores,
        count(case when contribution < 0 then 1 end) as stores_negative,
        sum(delivery_cost) as delivery_cost,
        sum(visit_cost) as visit_cost,
        sum(rebates) as rebates,
        sum(promo_cost) as promo_cost,
        sum(cost_recent) as cost_recent,
        sum(drops) as drops
    from {{ ref('fct_store_economics') }}
    group by distributor_code
),

inputs as (
    select
        d.*,
        b.window_start,
        b.window_end,
        coalesce(d.km_from_dc, 0) * {{ var('channel_road_factor') }} as road_km,
        d.km_from_dc is null as km_imputed,
        (b.window_end - b.window_start) / 30.4 as months,
        coalesce(sh.sell_in_units, 0) as sell_in_units,
        coalesce(sh.revenue, 0) as revenue,
        coalesce(sh.revenue_recent, 0) as revenue_recent,
        coalesce(sh.gross_margin, 0) as gross_margin,
        coalesce(sh.gross_margin_recent, 0) as gross_margin_recent,
        coalesce(sh.shipments, 0) as shipments,
        coalesce(sh.shipments_recent, 0) as shipments_recent,
        coalesce(r.rebates, 0) as own_rebates,
        coalesce(r.rebates_recent, 0) as own_rebates_recent,
        coalesce(sc.stores, 0) as stores,
        coalesce(sc.stores_negative, 0) as stores_negative,
        coalesce(sc.drops, 0) as store_drops,
        coalesce(sc.delivery_cost, 0) as store_delivery_cost,
        coalesce(sc.visit_cost, 0) as store_visit_cost,
        coalesce(sc.rebates, 0) as store_rebates,
        coalesce(sc.promo_cost, 0) as promo_cost,
        coalesce(sc.cost_recent, 0) as store_cost_recent
    from distributors as d
    cross join bounds as b
    left join shipments as sh on d.distributor_code = sh.distributor_code
    left join own_rebates as r on d.distributor_code = r.distributor_code
    left join store_costs as sc on d.distributor_code = sc.distributor_code
),

costed as (
    select
        *,
        {{ var('channel_shipment_cost') }}
        + {{ var('channel_shipment_road_km_cost') }} * 2 * road_km as cost_per_shipment,
        shipments * (
            {{ var('channel_shipment_cost') }}
            + {{ var('channel_shipment_road_km_cost') }} * 2 * road_km
        ) as freight_cost,
        shipments_recent * (
            {{ var('channel_shipment_cost') }}
            + {{ var('channel_shipment_road_km_cost') }} * 2 * road_km
        ) as freight_cost_recent,
        months * {{ var('channel_account_cost_month') }} as account_cost
    from inputs
)

select
    distributor_code,
    distributor_name,
    tier,
    region,
    province,
    city,
    city_known,
    seat_lat,
    seat_lon,
    dc_code,
    window_start,
    window_end,
    stores,
    stores_negative,
    sell_in_units,
    round(revenue, 2) as revenue,
    round(gross_margin, 2) as gross_margin,
    shipments,
    round(sell_in_units / nullif(shipments, 0), 1) as avg_shipment_units,
    round(km_from_dc, 1) as km_from_dc,
    round(road_km, 1) as road_km,
    km_imputed,
    round(freight_cost, 2) as freight_cost,
    store_drops,
    round(store_delivery_cost, 2) as store_delivery_cost,
    round(freight_cost + store_delivery_cost, 2) as delivery_cost,
    round(account_cost, 2) as account_cost,
    round(store_visit_cost, 2) as store_visit_cost,
    round(account_cost + store_visit_cost, 2) as visit_cost,
    round(own_rebates, 2) as own_rebates,
    round(store_rebates, 2) as store_rebates,
    round(own_rebates + store_rebates, 2) as rebates,
    round(promo_cost, 2) as promo_cost,
    round(
        gross_margin - freight_cost - store_delivery_cost - account_cost - store_visit_cost
        - own_rebates - store_rebates - promo_cost,
        2
    ) as contribution,
    round(
        (
            gross_margin - freight_cost - store_delivery_cost - account_cost - store_visit_cost
            - own_rebates - store_rebates - promo_cost
        ) / nullif(revenue, 0),
        4
    ) as contribution_margin,
    round(revenue_recent, 2) as revenue_recent,
    round(
        gross_margin_recent - freight_cost_recent - account_cost / 2 - own_rebates_recent
        - store_cost_recent,
        2
    ) as contribution_recent,
    round(
        (revenue_recent - (revenue - revenue_recent))
        / nullif(revenue - revenue_recent, 0)
        / ({{ var('channel_window_weeks') }} / 2.0),
        4
    ) as revenue_trend_per_week
from costed
