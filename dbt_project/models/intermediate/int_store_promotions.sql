-- The promotion windows each store signed up to: one row per sign-up x promotion, with the
-- SKU and the first and last day the store sells it at the promotion price.
select
    su.store_code,
    p.sku_code,
    p.promo_id,
    p.start_date,
    p.end_date,
    p.discount
from {{ ref('stg_dms__promotion_signups') }} as su
inner join {{ ref('stg_dms__promotions') }} as p on su.promo_id = p.promo_id
