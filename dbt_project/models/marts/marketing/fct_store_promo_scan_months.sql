-- Per store x month: the product scans of the consumers who shop at the store most (their
-- home store at the newest snapshot) and how many of them fell in a promotion window the
-- store had signed up to for that SKU. A store's promotion share over some months is what
-- any of its shoppers would show by chance: the yardstick of a consumer's promo_index.
with homes as (
    select
        consumer_id,
        home_store_code as store_code
    from {{ ref('fct_marketing_snapshots') }}
    where is_newest and home_store_code is not null
),

scans as (
    select
        h.store_code,
        ps.scan_id,
        ps.sku_code,
        ps.scan_date
    from {{ ref('fct_product_scans') }} as ps
    inner join homes as h on ps.consumer_id = h.consumer_id
),

promo_scans as (
    select distinct sc.scan_id
    from scans as sc
    inner join {{ ref('int_store_promotions') }} as sp
        on sc.store_code = sp.store_code
        and sc.sku_code = sp.sku_code
        and sc.scan_date between sp.start_date and sp.end_date
)

select
    sc.store_code,
    cast({{ dbt.date_trunc('month', 'sc.scan_date') }} as date) as month_start,
    count(*) as scans,
    count(pr.scan_id) as promo_scans
from scans as sc
left join promo_scans as pr on sc.scan_id = pr.scan_id
group by 1, 2
