-- Cost to serve and contribution per store over the channel window (the last
-- channel_window_weeks of store orders), with every input shown: the brand's list value of
-- what the store took delivered, its gross margin, drops and their road km to the
-- distributor's seat, rep visits, rebates paid to the store and the promotion discounts
-- the brand funded. Unit costs and margins come from config/channel.yaml as vars
-- (macros/channel.sql). contribution = gross_margin - delivery - visits - rebates - promo.
-- The recent half of the window and the change of revenue between the halves feed the
-- inefficiency rule (bclake.ml.channel); docs/channel.md.
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

stores as (
    select
        s.store_code,
        s.store_name,
        s.channel_type,
        s.size_class,
        s.region,
        s.province,
        s.city,
        s.adcode,
        s.city_tier,
        s.lat,
        s.lon,
        s.distributor_code,
        s.onboard_date,
        d.distributor_code is not null as distributor_known,
        {{ km_between('s.lat', 's.lon', 'c.lat', 'c.lon') }} as km_to_distributor
    from {{ ref('dim_store') }} as s
    left join {{ ref('stg_dms__distributors') }} as d on s.distributor_code = d.distributor_code
    left join cities as c on d.province = c.province and d.city = c.city
),

-- the nearest other distributor of the store's province, by its seat
others as (
    select
        s.store_code,
        d.distributor_code,
        {{ km_between('s.lat', 's.lon', 'c.lat', 'c.lon') }} as km,
        row_number() over (
            partition by s.store_code
            order by {{ km_between('s.lat', 's.lon', 'c.lat', 'c.lon') }}, d.distributor_code
        ) as nth
    from stores as s
    inner join {{ ref('stg_dms__distributors') }} as d
        on s.province = d.province and s.distributor_code <> d.distributor_code
    inner join cities as c on d.province = c.province and d.city = c.city
    where s.lat is not null and s.lon is not null
),

-- a store without coordinates takes its distributor's median store distance
distributor_km as (
    select
        distributor_code,
        median(km_to_distributor) as median_km
    from stores
    group by distributor_code
),

lines as (
    select
        o.store_code,
        o.order_id,
        o.sku_code,
        o.delivery_date,
        o.qty_delivered,
        o.qty_delivered * p.list_price as list_value,
        o.qty_delivered * p.list_price * {{ channel_margin_share('p.category') }} as margin,
        o.delivery_date >= b.recent_start as is_recent
    from {{ ref('fct_store_orders') }} as o
    cross join bounds as b
    left join {{ ref('dim_product') }} as p on o.sku_code = p.sku_code
    where
        o.qty_delivered > 0
        and o.delivery_date >= b.window_start
        and o.delivery_date < b.window_end
),

orders as (
    select
        store_code,
        sum(qty_delivered) as sell_in_units,
        sum(coalesce(list_value, 0)) as revenue,
        sum(coalesce(margin, 0)) as gross_margin,
        count(distinct delivery_date) as drops,
        count(distinct case when is_recent then delivery_date end) as drops_recent,
        sum(case when is_recent then coalesce(list_value, 0) else 0 end) as revenue_recent,
        sum(case when is_recent then coalesce(margin, 0) else 0 end) as gross_margin_recent,
        count(distinct order_id) as orders
    from lines
    group by store_code
),

-- discount on units delivered inside a promotion window the store signed up to
promos as (
    select
        l.store_code,
        sum(l.list_value * sp.discount) as promo_cost,
        sum(case when l.is_recent then l.list_value * sp.discount else 0 end) as promo_recent
    from lines as l
    inner join {{ ref('int_store_promotions') }} as sp
        on
        l.store_code = sp.store_code
        and l.sku_code = sp.sku_code
        and l.delivery_date between sp.start_date and sp.end_date
    group by l.store_code
),

visits as (
    select
        v.store_code,
        count(*) as visits,
        count(case when v.check_date >= b.recent_start then 1 end) as visits_recent
    from {{ ref('stg_dms__display_checks') }} as v
    cross join bounds as b
    where v.check_date >= b.window_start and v.check_date < b.window_end
    group by v.store_code
),

rebates as (
    select
        r.payee_code as store_code,
        sum(r.amount) as rebates,
        sum(case when r.period_start >= b.recent_start then r.amount else 0 end)
            as rebates_recent
    from {{ ref('stg_dms__rebates') }} as r
    cross join bounds as b
    where
        r.payee_type = 'store'
        and r.period_start >= b.window_start
        and r.period_start < b.window_end
    group by r.payee_code
),

inputs as (
    select
        s.*,
        b.window_start,
        b.window_end,
        o2.distributor_code as nearest_distributor_code,
        round(o2.km * {{ var('channel_road_factor') }}, 1) as nearest_distributor_road_km,
        coalesce(s.km_to_distributor, dk.median_km, 0) * {{ var('channel_road_factor') }}
            as road_km,
        s.km_to_distributor is null as km_imputed,
        -- weeks the store was onboard inside the window
        greatest(
            1.0,
            (b.window_end - greatest(b.window_start, coalesce(s.onboard_date, b.window_start)))
            / 7.0
        ) as weeks_active,
        coalesce(o.sell_in_units, 0) as sell_in_units,
        coalesce(o.orders, 0) as orders,
        coalesce(o.revenue, 0) as revenue,
        coalesce(o.revenue_recent, 0) as revenue_recent,
        coalesce(o.gross_margin, 0) as gross_margin,
        coalesce(o.gross_margin_recent, 0) as gross_margin_recent,
        coalesce(o.drops, 0) as drops,
        coalesce(o.drops_recent, 0) as drops_recent,
        coalesce(v.visits, 0) as visits,
        coalesce(v.visits_recent, 0) as visits_recent,
        coalesce(r.rebates, 0) as rebates,
        coalesce(r.rebates_recent, 0) as rebates_recent,
        coalesce(p.promo_cost, 0) as promo_cost,
        coalesce(p.promo_recent, 0) as promo_recent,
        {{ channel_visit_cost('s.city_tier') }} as cost_per_visit,
        {{ var('channel_drop_cost') }} as cost_per_drop_fixed
    from stores as s
    cross join bounds as b
    left join others as o2 on s.store_code = o2.store_code and o2.nth = 1
    left join distributor_km as dk on s.distributor_code = dk.distributor_code
    left join orders as o on s.store_code = o.store_code
    left join visits as v on s.store_code = v.store_code
    left join rebates as r on s.store_code = r.store_code
    left join promos as p on s.store_code = p.store_code
),

costed as (
    select
        *,
        cost_per_drop_fixed + {{ var('channel_road_km_cost') }} * 2 * road_km as cost_per_drop,
        drops * (cost_per_drop_fixed + {{ var('channel_road_km_cost') }} * 2 * road_km)
            as delivery_cost,
        drops_recent * (cost_per_drop_fixed + {{ var('channel_road_km_cost') }} * 2 * road_km)
            as delivery_cost_recent,
        visits * cost_per_visit as visit_cost,
        visits_recent * cost_per_visit as visit_cost_recent
    from inputs
)

select
    store_code,
    store_name,
    distributor_code,
    distributor_known,
    channel_type,
    size_class,
    region,
    province,
    city,
    adcode,
    city_tier,
    lat,
    lon,
    window_start,
    window_end,
    round(weeks_active, 2) as weeks_active,
    sell_in_units,
    orders,
    round(revenue, 2) as revenue,
    round(gross_margin, 2) as gross_margin,
    drops,
    round(sell_in_units / nullif(drops, 0), 1) as avg_drop_units,
    round(km_to_distributor, 1) as km_to_distributor,
    round(road_km, 1) as road_km,
    km_imputed,
    round(cost_per_drop, 2) as cost_per_drop,
    round(delivery_cost, 2) as delivery_cost,
    visits,
    round(cost_per_visit, 2) as cost_per_visit,
    round(visit_cost, 2) as visit_cost,
    round(rebates, 2) as rebates,
    round(promo_cost, 2) as promo_cost,
    round(gross_margin - delivery_cost - visit_cost - rebates - promo_cost, 2) as contribution,
    round((gross_margin - delivery_cost - visit_cost - rebates - promo_cost) / weeks_active, 2)
        as contribution_per_week,
    round(
        (gross_margin - delivery_cost - visit_cost - rebates - promo_cost) / nullif(revenue, 0), 4
    ) as contribution_margin,
    round(revenue_recent, 2) as revenue_recent,
    round(
        gross_margin_recent - delivery_cost_recent - visit_cost_recent - rebates_recent
        - promo_recent,
        2
    ) as contribution_recent,
    round(
        delivery_cost_recent + visit_cost_recent + rebates_recent + promo_recent, 2
    ) as cost_recent,
    -- relative change of weekly revenue from the early to the recent half, per week
    round(
        (revenue_recent - (revenue - revenue_recent))
        / nullif(revenue - revenue_recent, 0)
        / ({{ var('channel_window_weeks') }} / 2.0),
        4
    ) as revenue_trend_per_week,
    nearest_distributor_code,
    nearest_distributor_road_km
from costed
