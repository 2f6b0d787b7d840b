-- Mart totals equal lake totals for store orders and product scans (after deduplication).
select 'fct_store_orders' as mart, m.n, l.n as lake_n
from (select count(*) as n, sum(qty_delivered) as units from {{ ref('fct_store_orders') }}) as m
cross join (select count(*) as n, sum(qty_delivered) as units from {{ ref('stg_dms__store_orders') }}) as l
where m.n <> l.n or m.units <> l.units

union all

select 'fct_product_scans', m.n, l.n
from (select count(*) as n from {{ ref('fct_product_scans') }}) as m
cross join (select count(*) as n from {{ ref('stg_code__product_scans') }}) as l
where m.n <> l.n
