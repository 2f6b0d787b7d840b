with deduped as (
    {{ dedup(source('dms', 'distributors'), ['distributor_code']) }}
)

select distributor_code, distributor_name, tier, region, province, city
from deduped
