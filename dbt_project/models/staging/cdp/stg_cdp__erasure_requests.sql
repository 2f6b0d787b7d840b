-- generated from contracts/cdp/erasure_requests.yaml by `bclake contracts --dbt`; do not edit
-- Requests to erase a consumer (删除权, PIPL art. 47), sent by the CDP or written by `bclake erase`.
-- Both identifiers are pseudonymised at ingest; a run then removes every row about the person from
-- the lake, the warehouse, the exports and the run logs, and keeps a receipt without personal data
-- (`bclake.ingest.erasure`).
with deduped as (
    {{ dedup(source('cdp', 'erasure_requests'), ['request_id']) }}
)

select
    request_id,
    consumer_id,
    phone,
    requested_at,
    reason,
    _source_file,
    _ingested_at
from deduped
