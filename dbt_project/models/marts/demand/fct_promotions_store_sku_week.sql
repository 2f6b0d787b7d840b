-- Promotion days per store x SKU x week for the stores signed up to a promotion,
-- including weeks still to come (promotions and sign-ups are known in advance).
select
    s.store_code,
    p.sku_code,
    d.week_start,
    count(distinct d.date_day) as promo_days,
    max(p.discount) as promo_discount
from {{ ref('stg_dms__promotion_signups') }} as s
inner join {{ ref('stg_dms__promotions') }} as p on s.promo_id = p.promo_id
inner join {{ ref('dim_date') }} as d on d.date_day between p.start_date and p.end_date
group by 1, 2, 3
