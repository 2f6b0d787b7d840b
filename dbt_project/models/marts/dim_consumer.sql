-- One row per consumer: pseudonymous id, coarse profile and consents. The phone number
-- never reaches the warehouse in clear; it is not carried here at all.
select
    c.consumer_id,
    c.gender,
    c.birth_year,
    case
        when c.birth_year is null then null
        when extract(year from c.register_date) - c.birth_year < 25 then '<25'
        when extract(year from c.register_date) - c.birth_year < 40 then '25-39'
        when extract(year from c.register_date) - c.birth_year < 60 then '40-59'
        else '60+'
    end as age_band,
    c.city,
    c.register_channel,
    c.register_date,
    coalesce(c.consent_marketing, false) as consent_marketing,
    coalesce(c.consent_profile, false) as consent_profile,
    (
        cast(c.gender is not null as integer)
        + cast(c.birth_year is not null as integer)
        + cast(c.city is not null as integer)
    ) / 3.0 as profile_completeness
from {{ ref('stg_cdp__consumers') }} as c
