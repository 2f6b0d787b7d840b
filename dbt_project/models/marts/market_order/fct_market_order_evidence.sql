-- The evidence of market-order alerts: one row per alert x scan, for every scan that
-- supports an alert (raised or not yet). Three kinds, each at its own grain:
--   forged_code  SKU x province where scanned x week: the keyed check value fails;
--   cloned_code  distributor x SKU x week of the code's first scan: a copied unit code;
--   diversion    distributor x SKU x destination province x week: the distributor's
--                goods scanned out of its territory, inside a weekly flow of them into
--                that province wide enough (consumers, share) to rule out travellers.
-- docs/market_order.md explains the thresholds (dbt vars) and why.
with scans as (
    select
        j.*,
        cast({{ dbt.date_trunc('week', 'j.scan_date') }} as date) as week_start,
        coalesce(r.is_cloned, false) as code_cloned,
        cast({{ dbt.date_trunc('week', 'cast(r.first_scan_time as date)') }} as date)
            as code_first_week
    from {{ ref('int_scan_journeys') }} as j
    left join {{ ref('int_code_repeat_scans') }} as r on j.product_code = r.product_code
),

forged as (
    select
        'forged_code' as kind,
        cast(null as varchar) as distributor_code,
        sku_code,
        scan_province as destination_province,
        week_start,
        scan_id,
        cast(null as bigint) as flow_scans,
        cast(null as bigint) as flow_consumers,
        cast(null as double) as flow_share
    from scans
    where not signature_ok
),

cloned as (
    select
        'cloned_code' as kind,
        distributor_code,
        sku_code,
        cast(null as varchar) as destination_province,
        code_first_week as week_start,
        scan_id,
        cast(null as bigint) as flow_scans,
        cast(null as bigint) as flow_consumers,
        cast(null as double) as flow_share
    from scans
    where signature_ok and code_cloned
),

-- out-of-territory scans of genuine, uncloned codes
away as (
    select *
    from scans
    where out_of_territory and signature_ok and not code_cloned
),

-- every scan of a distributor's goods in a week: the base of the flow share
distributor_weeks as (
    select
        distributor_code,
        week_start,
        count(*) as scans
    from scans
    where code_known and signature_ok and not code_cloned
    group by distributor_code, week_start
),

flows as (
    select
        a.distributor_code,
        a.scan_province,
        a.week_start,
        count(*) as flow_scans,
        count(distinct a.consumer_id) as flow_consumers,
        count(*) * 1.0 / max(w.scans) as flow_share
    from away as a
    inner join distributor_weeks as w
        on a.distributor_code = w.distributor_code and a.week_start = w.week_start
    group by a.distributor_code, a.scan_province, a.week_start
),

diverted as (
    select
        'diversion' as kind,
        a.distributor_code,
        a.sku_code,
        a.scan_province as destination_province,
        a.week_start,
        a.scan_id,
        f.flow_scans,
        f.flow_consumers,
        f.flow_share
    from away as a
    inner join flows as f
        on
        a.distributor_code = f.distributor_code
        and a.scan_province = f.scan_province
        and a.week_start = f.week_start
    where
        f.flow_consumers >= {{ var('diversion_min_consumers') }}
        and f.flow_share >= {{ var('diversion_min_share') }}
),

evidence as (
    select * from forged
    union all
    select * from cloned
    union all
    select * from diverted
)

select
    'MO' || upper(substring(md5(
        e.kind || '|' || coalesce(e.distributor_code, '-') || '|' || e.sku_code || '|'
        || coalesce(e.destination_province, '-') || '|' || cast(e.week_start as varchar)
    ), 1, 12)) as alert_id,
    e.kind,
    e.distributor_code,
    e.sku_code,
    e.destination_province,
    e.week_start,
    e.flow_scans,
    e.flow_consumers,
    e.flow_share,
    s.scan_id,
    s.scan_time,
    s.product_code,
    s.case_code,
    s.batch_no,
    s.consumer_id,
    s.lat,
    s.lon,
    s.scan_city,
    s.scan_province,
    s.scan_region,
    s.km_to_territory,
    s.before_activation
from evidence as e
inner join scans as s on e.scan_id = s.scan_id
