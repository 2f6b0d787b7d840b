-- generated from contracts/cdp/interactions.yaml by `bclake contracts --dbt`; do not edit
-- Member activity in community groups (messages, likes, check-ins, shares).
with deduped as (
    {{ dedup(source('cdp', 'interactions'), ['interaction_id']) }}
)

select
    interaction_id,
    group_id,
    consumer_id,
    interaction_type,
    interaction_time,
    interaction_date,
    _source_file,
    _ingested_at
from deduped
