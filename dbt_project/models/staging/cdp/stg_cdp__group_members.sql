-- generated from contracts/cdp/group_members.yaml by `bclake contracts --dbt`; do not edit
-- Consumers who joined a community group.
with deduped as (
    {{ dedup(source('cdp', 'group_members'), ['group_id', 'consumer_id']) }}
)

select
    group_id,
    consumer_id,
    join_date,
    _source_file,
    _ingested_at
from deduped
