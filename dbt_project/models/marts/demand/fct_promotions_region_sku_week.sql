-- Trade promotions by sales region x SKU x week (Monday start), including weeks still to
-- come: promotions are planned ahead, so these are known-in-advance forecast inputs.
-- promo_days: days of the week with at least one promotion running; promo_discount: the
-- deepest discount; promo_stores: stores signed up to the week's promotions.
with promo_days as (
    select
        p.promo_id,
        p.region,
        p.sku_code,
        p.discount,
        d.date_day,
        d.week_start
    from {{ ref('stg_dms__promotions') }} as p
    inner join {{ ref('dim_date') }} as d
        on d.date_day between p.start_date and p.end_date
),

signups as (
    select
        promo_id,
        count(distinct store_code) as stores
    from {{ ref('stg_dms__promotion_signups') }}
    group by promo_id
),

weekly as (
    select
        region,
        sku_code,
        week_start,
        count(distinct date_day) as promo_days,
        max(discount) as promo_discount
    from promo_days
    group by region, sku_code, week_start
),

weekly_stores as (
    select
        pw.region,
        pw.sku_code,
        pw.week_start,
        sum(coalesce(s.stores, 0)) as promo_stores
    from (
        select distinct
            promo_id,
            region,
            sku_code,
            week_start
        from promo_days
    ) as pw
    left join signups as s on pw.promo_id = s.promo_id
    group by pw.region, pw.sku_code, pw.week_start
)

select
    w.region,
    w.sku_code,
    w.week_start,
    w.promo_days,
    w.promo_discount,
    s.promo_stores
from weekly as w
inner join weekly_stores as s
    on w.region = s.region and w.sku_code = s.sku_code and w.week_start = s.week_start
