-- Market-order alerts (市场秩序预警): one row per alert raised from the evidence, with
-- its score, the estimated volume, a reason in zh and en a sales manager can act on,
-- and its review status. The id is a hash of the alert's grain, so the same evidence
-- keeps the same id across runs and a decision recorded on it (review.alert_decisions)
-- follows it: the latest decision sets the status, and a dismissed alert whose
-- evidence has grown since is reopened.
with evidence as (
    select * from {{ ref('fct_market_order_evidence') }}
),

grouped as (
    select
        alert_id,
        kind,
        distributor_code,
        sku_code,
        week_start,
        max(destination_province) as destination_province,
        count(*) as scans,
        count(distinct consumer_id) as consumers,
        count(distinct product_code) as codes,
        count(distinct case_code) as cases_seen,
        count(distinct scan_province) as provinces,
        string_agg(distinct scan_province, ',' order by scan_province) as scan_provinces,
        string_agg(distinct case_code, ',' order by case_code) as case_codes,
        string_agg(distinct batch_no, ',' order by batch_no) as batch_nos,
        min(scan_time) as first_seen,
        max(scan_time) as last_seen,
        median(km_to_territory) as km_from_territory,
        max(flow_scans) as flow_scans,
        max(flow_consumers) as flow_consumers,
        max(flow_share) as flow_share,
        sum(case when before_activation then 1 else 0 end) as scans_before_activation
    from evidence
    group by alert_id, kind, distributor_code, sku_code, week_start
),

raised as (
    select *
    from grouped
    where
        (kind = 'forged_code' and scans >= {{ var('forged_min_scans') }})
        or kind = 'cloned_code'
        or (kind = 'diversion' and consumers >= {{ var('alert_min_consumers') }})
),

-- the share of a distributor's units that consumers scan: scanned codes -> units
scan_share as (
    select
        u.distributor_code,
        s.scanned_codes * 1.0 / nullif(u.units, 0) as share
    from (
        select
            distributor_code,
            sum(last_serial - first_serial + 1) as units
        from {{ ref('stg_code__case_activations') }}
        group by distributor_code
    ) as u
    inner join (
        select
            distributor_code,
            count(distinct product_code) as scanned_codes
        from {{ ref('int_scan_journeys') }}
        where code_known
        group by distributor_code
    ) as s on u.distributor_code = s.distributor_code
),

-- distributors whose territory (province) the goods were scanned in: they see the alert too
local_distributors as (
    select
        province,
        string_agg(distributor_code, ',' order by distributor_code) as distributor_codes
    from {{ ref('dim_distributor') }}
    group by province
),

scored as (
    select
        r.*,
        dist.distributor_name,
        dist.province as origin_province,
        dist.region as origin_region,
        p.sku_name,
        p.case_pack,
        g.region as destination_region,
        case
            when r.kind = 'diversion'
                then round(r.codes / greatest(coalesce(sh.share, 0.05), 0.01))
            else r.codes
        end as estimated_units,
        -- a documented, monotone score in [0, 1]; see docs/market_order.md
        case r.kind
            when 'forged_code' then least(1.0, 0.7 + 0.1 * r.scans)
            when 'cloned_code' then least(1.0, 0.6 + 0.1 * (r.consumers - 1) / greatest(r.codes, 1))
            else least(
                    1.0,
                    0.5 * least(1.0, r.flow_consumers / (4.0 * {{ var('diversion_min_consumers') }}))
                    + 0.5 * least(1.0, r.flow_share / (4.0 * {{ var('diversion_min_share') }}))
                )
        end as score
    from raised as r
    left join {{ ref('dim_distributor') }} as dist on r.distributor_code = dist.distributor_code
    left join {{ ref('dim_product') }} as p on r.sku_code = p.sku_code
    left join (
        select distinct
            province,
            region
        from {{ ref('geo_cities') }}
    ) as g
        on r.destination_province = g.province
    left join scan_share as sh on r.distributor_code = sh.distributor_code
)

select
    s.alert_id,
    s.kind,
    s.distributor_code,
    s.distributor_name,
    s.origin_province,
    s.origin_region,
    s.sku_code,
    s.sku_name,
    s.week_start,
    coalesce(s.destination_province, s.scan_provinces) as destination_provinces,
    coalesce(s.destination_region, s.origin_region) as destination_region,
    l.distributor_codes as destination_distributors,
    s.scans,
    s.consumers,
    s.codes,
    s.cases_seen,
    s.case_codes,
    s.batch_nos,
    s.scans_before_activation,
    cast(s.estimated_units as bigint) as estimated_units,
    cast(ceil(s.estimated_units * 1.0 / greatest(coalesce(s.case_pack, 1), 1)) as bigint)
        as estimated_cases,
    round(s.km_from_territory, 0) as km_from_territory,
    s.flow_consumers,
    round(s.flow_share, 4) as flow_share,
    s.first_seen,
    s.last_seen,
    round(s.score, 3) as score,
    {{ review_columns('s.scans', 'scans_at_decision') }},
    case s.kind
        when 'diversion'
            then
                s.distributor_code || ' 的 ' || s.sku_code || ' ' || coalesce(s.sku_name, '')
                || ' (' || s.cases_seen || ' 箱) 本周在 ' || s.destination_province
                || ' 被 ' || s.consumers || ' 位消费者扫码 ' || s.scans || ' 次, 距其经销区域 ('
                || coalesce(s.origin_province, '?') || ') 约 '
                || cast(round(s.km_from_territory, 0) as bigint) || ' km; 该经销商本周 '
                || cast(round(100 * s.flow_share, 1) as varchar) || '% 的扫码流向 '
                || s.destination_province || ', 估计窜货 ' || cast(s.estimated_units as bigint)
                || ' 件'
        when 'forged_code'
            then
                s.destination_province || ' 发现 ' || s.scans || ' 次 ' || s.sku_code
                || ' 扫码的防伪码校验失败 (从未发放的码, 疑似假货), 涉及 ' || s.consumers || ' 位消费者'
        else
            s.codes || ' 个 ' || coalesce(s.distributor_code, '未激活') || ' 的 ' || s.sku_code
            || ' 单品码被 ' || s.consumers || ' 位消费者在 ' || s.provinces
            || ' 个省份扫码 ' || s.scans || ' 次 (一物一码被复制, 疑似假货)'
    end as reason_zh,
    case s.kind
        when 'diversion'
            then
                s.sku_code || ' of ' || s.distributor_code || ' (' || s.cases_seen
                || ' cases) scanned ' || s.scans || ' times by ' || s.consumers
                || ' consumers in ' || s.destination_province || ' this week, about '
                || cast(round(s.km_from_territory, 0) as bigint) || ' km from its territory ('
                || coalesce(s.origin_province, '?') || '); '
                || cast(round(100 * s.flow_share, 1) as varchar) || '% of the distributor''s scans '
                || 'this week were there; about ' || cast(s.estimated_units as bigint)
                || ' units diverted'
        when 'forged_code'
            then
                s.scans || ' scans of ' || s.sku_code || ' in ' || s.destination_province
                || ' carry codes whose keyed check fails (never issued: counterfeit), '
                || s.consumers || ' consumers'
        else
            s.codes || ' unit codes of ' || s.sku_code || ' ('
            || coalesce(s.distributor_code, 'not activated') || ') scanned ' || s.scans
            || ' times by ' || s.consumers || ' consumers in ' || s.provinces
            || ' provinces (copied codes: counterfeit)'
    end as reason_en
from scored as s
left join {{ ref('int_alert_reviews') }} as d on s.alert_id = d.alert_id
left join local_distributors as l on s.destination_province = l.province
