-- Demand signals against coverage per city (every reference city, by adcode) over the
-- channel window: consumers registered there (CDP city), product scans geolocated there
-- (int_scan_journeys: nearest city seat of the scan) and the consumers behind them, the
-- brand's stores there and what they took (sell-in) and sold (POS sell-through), the
-- stores within channel_neighbour_km of the seat and their sell-in, the nearest store,
-- and the province's brand share and competitor price index over the last three months.
-- White space is estimated from these in bclake.ml.channel; docs/channel.md.
with bounds as (
    {{ channel_window() }}
),

-- a CDP city name matched to the reference (the first by adcode when a name repeats)
city_names as (
    select
        city,
        adcode,
        row_number() over (partition by city order by adcode) as nth
    from {{ ref('geo_cities') }}
),

consumers as (
    select
        n.adcode,
        count(*) as consumers
    from {{ ref('stg_cdp__consumers') }} as c
    inner join city_names as n on c.city = n.city and n.nth = 1
    group by n.adcode
),

scans as (
    select
        g.adcode,
        count(*) as scans,
        count(distinct j.consumer_id) as scan_consumers
    from {{ ref('int_scan_journeys') }} as j
    cross join bounds as b
    inner join {{ ref('geo_cities') }} as g
        on j.scan_province = g.province and j.scan_city = g.city
    where j.scan_date >= b.window_start and j.scan_date < b.window_end
    group by g.adcode
),

economics as (
    select
        adcode,
        count(*) as stores,
        sum(sell_in_units / weeks_active) as sell_in_units_week
    from {{ ref('fct_store_economics') }}
    where adcode is not null
    group by adcode
),

sell_through as (
    select
        s.adcode,
        count(distinct t.store_code) as pos_stores,
        sum(t.qty) as sell_through_units
    from {{ ref('fct_sell_through') }} as t
    cross join bounds as b
    inner join {{ ref('dim_store') }} as s on t.store_code = s.store_code
    where t.biz_date >= b.window_start and t.biz_date < b.window_end and s.adcode is not null
    group by s.adcode
),

-- every city seat x every store with coordinates: nearest store, stores nearby
pairs as (
    select
        g.adcode,
        e.store_code,
        e.adcode as store_adcode,
        e.sell_in_units / e.weeks_active as sell_in_units_week,
        {{ km_between('g.lat', 'g.lon', 'e.lat', 'e.lon') }} as km
    from {{ ref('geo_cities') }} as g
    cross join {{ ref('fct_store_economics') }} as e
    where e.lat is not null and e.lon is not null
),

nearby as (
    select
        adcode,
        min(km) as nearest_store_km,
        count(
            case when km <= {{ var('channel_neighbour_km') }} and store_adcode <> adcode then 1 end
        ) as neighbour_stores,
        sum(
            case
                when km <= {{ var('channel_neighbour_km') }} and store_adcode <> adcode
                    then sell_in_units_week
                else 0
            end
        ) as neighbour_sell_in_units_week
    from pairs
    group by adcode
),

market as (
    select
        s.province,
        avg(s.brand_share) as brand_share,
        avg(p.competitor_price_index) as competitor_price_index
    from {{ ref('stg_market__market_share') }} as s
    left join {{ ref('stg_market__competitor_prices') }} as p
        on s.month = p.month and s.province = p.province and s.category = p.category
    where s.month > (select max(m.month) as max_month from {{ ref('stg_market__market_share') }} as m) - 92
    group by s.province
)

select
    g.adcode,
    g.city,
    g.province,
    g.region,
    g.tier,
    g.lat,
    g.lon,
    b.window_start,
    b.window_end,
    coalesce(c.consumers, 0) as consumers,
    coalesce(sc.scans, 0) as scans,
    coalesce(sc.scan_consumers, 0) as scan_consumers,
    round(coalesce(sc.scans, 0) / ({{ var('channel_window_weeks') }} * 1.0), 2) as scans_week,
    coalesce(e.stores, 0) as stores,
    coalesce(st.pos_stores, 0) as pos_stores,
    round(coalesce(e.sell_in_units_week, 0), 2) as sell_in_units_week,
    round(
        coalesce(st.sell_through_units, 0) / ({{ var('channel_window_weeks') }} * 1.0), 2
    ) as sell_through_units_week,
    round(n.nearest_store_km, 1) as nearest_store_km,
    coalesce(n.neighbour_stores, 0) as neighbour_stores,
    round(coalesce(n.neighbour_sell_in_units_week, 0), 2) as neighbour_sell_in_units_week,
    round(m.brand_share, 4) as brand_share,
    round(m.competitor_price_index, 4) as competitor_price_index
from {{ ref('geo_cities') }} as g
cross join bounds as b
left join consumers as c on g.adcode = c.adcode
left join scans as sc on g.adcode = sc.adcode
left join economics as e on g.adcode = e.adcode
left join sell_through as st on g.adcode = st.adcode
left join nearby as n on g.adcode = n.adcode
left join market as m on g.province = m.province
