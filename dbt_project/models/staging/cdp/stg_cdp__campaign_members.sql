-- generated from contracts/cdp/campaign_members.yaml by `bclake contracts --dbt`; do not edit
-- Who each campaign drew, and whether they were treated (got a coupon) or held out.
with deduped as (
    {{ dedup(source('cdp', 'campaign_members'), ['campaign_id', 'consumer_id']) }}
)

select
    campaign_id,
    consumer_id,
    arm,
    assigned_date,
    _source_file,
    _ingested_at
from deduped
