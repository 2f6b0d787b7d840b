-- One row per distributor with the number of stores it serves.
with stores as (
    select
        distributor_code,
        count(*) as stores
    from {{ ref('stg_dms__stores') }}
    group by distributor_code
)

select
    d.distributor_code,
    d.distributor_name,
    d.tier,
    d.region,
    d.province,
    d.city,
    coalesce(s.stores, 0) as stores
from {{ ref('stg_dms__distributors') }} as d
left join stores as s on d.distributor_code = s.distributor_code
