-- generated from contracts/cdp/campaigns.yaml by `bclake contracts --dbt`; do not edit
-- Coupon campaigns to consumers; `target_size` consumers drawn, a random hold-out gets nothing.
with deduped as (
    {{ dedup(source('cdp', 'campaigns'), ['campaign_id']) }}
)

select
    campaign_id,
    campaign_name,
    category,
    start_date,
    end_date,
    coupon_value,
    target_size,
    holdout_size,
    _source_file,
    _ingested_at
from deduped
