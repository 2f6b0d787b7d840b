-- Every piece of evidence an incentive programme can count, one row per event, with the
-- attributes its eligibility rules read (config/incentives.yaml names the kinds):
-- distributor_purchases (ERP invoices), store_purchases (delivered store-order lines),
-- new_store_first_order (a store's first delivered order, for the distributor that
-- delivered it), display_pass (display checks) and verified_scan (product scans a store
-- brought, int_incentive_scan_links). Whether an event counts is decided per programme
-- in fct_incentive_statement_lines; nothing is filtered here but what no rule can use.
with stores as (
    select * from {{ ref('stg_dms__stores') }}
),

delivered as (
    select
        o.order_id,
        o.sku_code,
        o.store_code,
        o.distributor_code,
        o.delivery_date,
        o.amount
    from {{ ref('stg_dms__store_orders') }} as o
    where o.qty_delivered > 0 and o.delivery_date is not null
),

first_orders as (
    select
        *,
        row_number() over (
            partition by store_code order by delivery_date, order_id, sku_code
        ) as nth
    from delivered
),

invoices as (
    select
        'distributor_purchases' as evidence,
        'distributor' as payee_type,
        i.distributor_code as payee_code,
        i.invoice_id as event_id,
        i.invoice_date as event_date,
        cast(null as varchar) as store_code,
        i.distributor_code,
        cast(null as varchar) as consumer_id,
        i.amount as basis,
        cast(null as integer) as score,
        cast(null as boolean) as passed,
        cast(null as boolean) as first_scan,
        cast(null as boolean) as code_valid,
        cast(null as boolean) as authorised,
        cast(null as boolean) as consented,
        cast(null as date) as onboard_date
    from {{ ref('stg_erp__invoices') }} as i
),

store_purchases as (
    select
        'store_purchases' as evidence,
        'store' as payee_type,
        d.store_code as payee_code,
        d.order_id || '/' || d.sku_code as event_id,
        d.delivery_date as event_date,
        d.store_code,
        d.distributor_code,
        cast(null as varchar) as consumer_id,
        d.amount as basis,
        cast(null as integer) as score,
        cast(null as boolean) as passed,
        cast(null as boolean) as first_scan,
        cast(null as boolean) as code_valid,
        cast(null as boolean) as authorised,
        cast(null as boolean) as consented,
        cast(null as date) as onboard_date
    from delivered as d
),

new_stores as (
    select
        'new_store_first_order' as evidence,
        'distributor' as payee_type,
        f.distributor_code as payee_code,
        f.order_id || '/' || f.sku_code as event_id,
        f.delivery_date as event_date,
        f.store_code,
        f.distributor_code,
        cast(null as varchar) as consumer_id,
        f.amount as basis,
        cast(null as integer) as score,
        cast(null as boolean) as passed,
        cast(null as boolean) as first_scan,
        cast(null as boolean) as code_valid,
        cast(null as boolean) as authorised,
        cast(null as boolean) as consented,
        s.onboard_date
    from first_orders as f
    left join stores as s on f.store_code = s.store_code
    where f.nth = 1
),

display_checks as (
    select
        'display_pass' as evidence,
        'store' as payee_type,
        c.store_code as payee_code,
        c.check_id as event_id,
        c.check_date as event_date,
        c.store_code,
        s.distributor_code,
        cast(null as varchar) as consumer_id,
        cast(null as double) as basis,
        c.score,
        c.compliant as passed,
        cast(null as boolean) as first_scan,
        cast(null as boolean) as code_valid,
        cast(null as boolean) as authorised,
        cast(null as boolean) as consented,
        cast(null as date) as onboard_date
    from {{ ref('stg_dms__display_checks') }} as c
    left join stores as s on c.store_code = s.store_code
),

scans as (
    select
        'verified_scan' as evidence,
        'store' as payee_type,
        l.store_code as payee_code,
        l.scan_id as event_id,
        l.scan_date as event_date,
        l.store_code,
        l.store_distributor_code as distributor_code,
        l.consumer_id,
        cast(null as double) as basis,
        cast(null as integer) as score,
        cast(null as boolean) as passed,
        l.first_scan,
        l.code_valid,
        l.authorised,
        l.consented,
        cast(null as date) as onboard_date
    from {{ ref('int_incentive_scan_links') }} as l
)

select * from invoices

union all

select * from store_purchases

union all

select * from new_stores

union all

select * from display_checks

union all

select * from scans
