-- Reward-fraud evidence (激励作弊): one row per event behind a fraud alert.
-- scan_farming: a consumer account whose store-linked scans at one store come in bursts
--   (>= farming_burst_scans within farming_burst_minutes) on >= farming_min_days days of
--   a month with at least farming_min_burst_share of its scans there in bursts, or one
--   burst of >= farming_burst_alone scans: staff scanning their own stock for the
--   traffic reward. A shopper's scans spread over the month; a farming account's come
--   in bursts. Every linked scan of that account at that store in that month is
--   evidence (and withheld until reviewed). A scan is in a burst when the window of
--   farming_burst_minutes ending or starting at it holds farming_burst_scans scans.
-- photo_reuse: a display check whose photo (perceptual hash) was first submitted for
--   another store: the check, and the original it copies.
-- The alert id hashes the alert's grain, so a review decision follows it across runs.
with links as (
    select * from {{ ref('int_incentive_scan_links') }}
),

windowed as (
    select
        *,
        count(*) over (
            partition by store_code, consumer_id
            order by scan_time
            range between interval '{{ var("farming_burst_minutes") }} minutes' preceding and current row
        ) as window_scans,
        count(*) over (
            partition by store_code, consumer_id
            order by scan_time
            range between current row and interval '{{ var("farming_burst_minutes") }} minutes' following
        ) as window_scans_ahead
    from links
),

accounts as (
    select
        store_code,
        consumer_id,
        cast({{ dbt.date_trunc('month', 'scan_date') }} as date) as period_start,
        count(distinct case
            when window_scans >= {{ var('farming_burst_scans') }} then scan_date
        end) as burst_days,
        max(window_scans) as max_burst_scans,
        avg(case
            when
                window_scans >= {{ var('farming_burst_scans') }}
                or window_scans_ahead >= {{ var('farming_burst_scans') }}
                then 1.0
            else 0.0
        end) as burst_share
    from windowed
    group by store_code, consumer_id, cast({{ dbt.date_trunc('month', 'scan_date') }} as date)
),

farming as (
    select *
    from accounts
    where
        (
            burst_days >= {{ var('farming_min_days') }}
            and burst_share >= {{ var('farming_min_burst_share') }}
        )
        or max_burst_scans >= {{ var('farming_burst_alone') }}
),

checks as (
    select
        check_id,
        store_code,
        check_date,
        score,
        compliant,
        photo_hash,
        first_value(check_id) over (
            partition by photo_hash order by check_date, check_id
        ) as origin_check_id,
        first_value(store_code) over (
            partition by photo_hash order by check_date, check_id
        ) as origin_store_code,
        first_value(check_date) over (
            partition by photo_hash order by check_date, check_id
        ) as origin_check_date
    from {{ ref('stg_dms__display_checks') }}
    where photo_hash is not null
),

reused as (
    select *
    from checks
    where store_code <> origin_store_code
),

photo_events as (  -- the copy, held, and the original it copies, shown beside it
    select
        check_id as reuse_check_id,
        check_date as reuse_date,
        check_id as event_id,
        check_date as event_date,
        store_code,
        photo_hash,
        origin_check_id,
        origin_store_code,
        true as withholds
    from reused
    union all
    select
        check_id as reuse_check_id,
        check_date as reuse_date,
        origin_check_id as event_id,
        origin_check_date as event_date,
        origin_store_code as store_code,
        photo_hash,
        origin_check_id,
        origin_store_code,
        false as withholds
    from reused
)

select
    'IF' || upper(substring(md5(
        'scan_farming|' || f.store_code || '|' || f.consumer_id || '|' || cast(f.period_start as varchar)
    ), 1, 12)) as alert_id,
    'scan_farming' as kind,
    'verified_scan' as evidence,
    f.store_code,
    f.consumer_id,
    f.period_start,
    w.scan_id as event_id,
    w.scan_time as event_time,
    w.product_code,
    w.window_scans,
    w.lat,
    w.lon,
    f.burst_days,
    f.max_burst_scans,
    cast(null as varchar) as photo_hash,
    cast(null as varchar) as origin_check_id,
    cast(null as varchar) as origin_store_code,
    true as withholds
from farming as f
inner join windowed as w
    on
    f.store_code = w.store_code
    and f.consumer_id = w.consumer_id
    and f.period_start = cast({{ dbt.date_trunc('month', 'w.scan_date') }} as date)

union all

select
    'IF' || upper(substring(md5('photo_reuse|' || p.reuse_check_id), 1, 12)) as alert_id,
    'photo_reuse' as kind,
    'display_pass' as evidence,
    p.store_code,
    cast(null as varchar) as consumer_id,
    cast({{ dbt.date_trunc('month', 'p.reuse_date') }} as date) as period_start,
    p.event_id,
    cast(p.event_date as timestamp) as event_time,
    cast(null as varchar) as product_code,
    cast(null as bigint) as window_scans,
    cast(null as double) as lat,
    cast(null as double) as lon,
    cast(null as bigint) as burst_days,
    cast(null as bigint) as max_burst_scans,
    p.photo_hash,
    p.origin_check_id,
    p.origin_store_code,
    p.withholds
from photo_events as p
