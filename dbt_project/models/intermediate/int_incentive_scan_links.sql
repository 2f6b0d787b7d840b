-- Product scans a store brought (扫码引流): each consumer product scan followed by the same
-- consumer scanning a store's own QR code within scan_link_minutes; the first such
-- store-code scan names the store. One row per linked product scan, with what the
-- incentive programmes check: the code's first scan ever, a valid keyed signature of an
-- activated code, goods from the store's own distributor (authorised), the consumer's
-- marketing consent. Candidate pairs are found by equality on a time bucket as wide as
-- the link window (the scan's bucket or the next), so the join stays linear in scans.
with scans as (
    select
        scan_id,
        product_code,
        consumer_id,
        scan_time,
        scan_date,
        distributor_code as code_distributor_code,
        code_known,
        signature_ok,
        lat,
        lon,
        row_number() over (partition by product_code order by scan_time, scan_id) = 1
            as first_scan
    from {{ ref('int_scan_journeys') }}
),

product as (
    select
        *,
        cast(floor(epoch(scan_time) / (60 * {{ var('scan_link_minutes') }})) as bigint) as bucket
    from scans
    where consumer_id is not null
),

visits as (
    select
        scan_id as store_scan_id,
        store_code,
        consumer_id,
        scan_time as store_scan_time,
        cast(floor(epoch(scan_time) / (60 * {{ var('scan_link_minutes') }})) as bigint) as bucket
    from {{ ref('stg_code__store_scans') }}
    where consumer_id is not null
),

candidates as (
    select
        p.scan_id,
        v.store_scan_id,
        v.store_code,
        v.store_scan_time
    from product as p
    inner join visits as v
        on p.consumer_id = v.consumer_id and v.bucket = p.bucket
    where v.store_scan_time >= p.scan_time
    union all
    select
        p.scan_id,
        v.store_scan_id,
        v.store_code,
        v.store_scan_time
    from product as p
    inner join visits as v
        on p.consumer_id = v.consumer_id and v.bucket = p.bucket + 1
    where v.store_scan_time <= p.scan_time + to_minutes({{ var('scan_link_minutes') }})
),

linked as (
    select
        *,
        row_number() over (partition by scan_id order by store_scan_time, store_scan_id) as pick
    from candidates
)

select
    p.scan_id,
    p.product_code,
    p.consumer_id,
    p.scan_time,
    p.scan_date,
    l.store_code,
    s.distributor_code as store_distributor_code,
    s.region,
    l.store_scan_id,
    l.store_scan_time,
    p.code_distributor_code,
    p.first_scan,
    coalesce(p.code_known and p.signature_ok, false) as code_valid,
    coalesce(p.code_distributor_code = s.distributor_code, false) as authorised,
    coalesce(c.consent_marketing, false) as consented,
    p.lat,
    p.lon
from product as p
inner join linked as l on p.scan_id = l.scan_id and l.pick = 1
left join {{ ref('stg_dms__stores') }} as s on l.store_code = s.store_code
left join {{ ref('stg_cdp__consumers') }} as c on p.consumer_id = c.consumer_id
