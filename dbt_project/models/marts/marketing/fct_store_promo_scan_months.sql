-- Per store x month: the product scans of the consumers who shopped at the store most that
-- month (their most frequent store in the month's store orders, ties: lowest code) and how
-- many of them fell in a promotion window the store had signed up to for that SKU. Only
-- the month's own data decides whose scans count where, so a snapshot reading the months
-- before it sees nothing later. A store's promotion share over some months is what any
-- of its shoppers would show by chance: the yardstick of a consumer's promo_index.
with month_homes as (
    select
        consumer_id,
        month_start,
        store_code
    from (
        select
            consumer_id,
            cast({{ dbt.date_trunc('month', 'scan_date') }} as date) as month_start,
            store_code,
            row_number() over (
                partition by consumer_id, cast({{ dbt.date_trunc('month', 'scan_date') }} as date)
                order by count(*) desc, store_code
            ) as pick
        from {{ ref('fct_store_scans') }}
        where consumer_id is not null
        group by 1, 2, 3
    ) as ranked
    where pick = 1
),

scans as (
    select
        h.store_code,
        h.month_start,
        ps.scan_id,
        ps.sku_code,
        ps.scan_date
    from {{ ref('fct_product_scans') }} as ps
    inner join month_homes as h
        on ps.consumer_id = h.consumer_id
        and cast({{ dbt.date_trunc('month', 'ps.scan_date') }} as date) = h.month_start
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
    sc.month_start,
    count(*) as scans,
    count(pr.scan_id) as promo_scans
from scans as sc
left join promo_scans as pr on sc.scan_id = pr.scan_id
group by 1, 2
