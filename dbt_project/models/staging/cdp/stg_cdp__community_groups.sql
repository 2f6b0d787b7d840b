-- generated from contracts/cdp/community_groups.yaml by `bclake contracts --dbt`; do not edit
-- Private-domain community groups, each run by a store.
with deduped as (
    {{ dedup(source('cdp', 'community_groups'), ['group_id']) }}
)

select
    group_id,
    store_code,
    group_name,
    created_date,
    _source_file,
    _ingested_at
from deduped
