-- generated from contracts/cdp/referrals.yaml by `bclake contracts --dbt`; do not edit
-- Consumers who brought in a new consumer (裂变).
with deduped as (
    {{ dedup(source('cdp', 'referrals'), ['referral_id']) }}
)

select
    referral_id,
    referrer_id,
    referee_id,
    referral_date,
    channel,
    _source_file,
    _ingested_at
from deduped
