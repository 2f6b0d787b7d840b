-- Promotion days per store x SKU x week for the stores signed up to a promotion,
-- including weeks still to come (promotions and sign-ups are known in advance).
select
    sp.store_code,
    sp.sku_code,
    d.week_start,
    count(distinct d.date_day) as promo_days,
    max(sp.discount) as promo_discount
from {{ ref('int_store_promotions') }} as sp
inner join {{ ref('dim_date') }} as d on d.date_day between sp.start_date and sp.end_date
group by 1, 2, 3
