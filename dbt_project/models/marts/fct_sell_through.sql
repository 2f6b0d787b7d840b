{{ config(
    materialized='incremental',
    unique_key=staging_key('dms', 'sell_through'),
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}
-- POS sell-through, one row per report line (store x SKU x day), deduplicated by key.
-- Incremental: only files ingested since the last run are read (straight from the lake,
-- because a staging view would deduplicate the whole history first) together with the
-- rows already held for the keys they touch (rows_to_decide), and the source's own order
-- decides (macros/dedup.sql): a correction replaces the old line, a re-sent older export
-- does not, exactly as a full refresh would. The key and the columns
-- are the staging model's (staging_key, staging_columns: generated from the contract), so
-- a contract change reaches the fact; on_schema_change adds or drops the column on the
-- next run (rows loaded before hold null in a new column until a --full-refresh).
with candidates as (
    {{ rows_to_decide('dms', 'sell_through') }}
),

deduped as (
    {{ dedup('candidates', staging_key('dms', 'sell_through')) }}
)

select
    {% for column in staging_columns('dms', 'sell_through') -%}
    {{ column }},
    {% endfor -%}
    _source_file,
    _source_row,
    _ingested_at
from deduped
