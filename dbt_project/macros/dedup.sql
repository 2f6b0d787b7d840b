{#-
  Which copy of a row wins when a key arrives more than once: the source's own order,
  not the order files happened to be loaded in.
    1. the export date in the file's path below its table folder, the last one written
       (`..._2025-03-01.csv`, `..._20250301.csv`, `2025-03-01/orders.csv`, `..._2025-03.csv`
       = the first of the month): a later export is a correction of an earlier one, even
       when the earlier file is re-sent or backfilled afterwards; files whose path
       carries no date rank below dated ones (an opening dump);
    2. then ingest time (a re-sent file of the same date wins), then the file name, then
       the row (a later line of one file wins).
  `source_file_date` and `source_order` are shared by `dedup`, the incremental facts and
  `fct_key_conflicts`, so all three agree on the winner.
-#}
{% macro source_file_date(file_column='_source_file') -%}
{%- set ymd = "regexp_extract(" ~ file_column ~ ", '^.*(?:^|[^0-9])([0-9]{8})(?:[^0-9]|$)', 1)" -%}
coalesce(
    try_cast(
        regexp_extract(
            {{ file_column }}, '^.*(?:^|[^0-9])([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[^0-9]|$)', 1
        ) as date
    ),
    try_cast(
        substr({{ ymd }}, 1, 4) || '-' || substr({{ ymd }}, 5, 2) || '-' || substr({{ ymd }}, 7, 2)
        as date
    ),
    try_cast(
        regexp_extract({{ file_column }}, '^.*(?:^|[^0-9])([0-9]{4}-[0-9]{2})(?:[^0-9-]|$)', 1)
        || '-01' as date
    )
)
{%- endmacro %}

{% macro source_order(prefix='') -%}
{{ source_file_date(prefix ~ '_source_file') }} desc nulls last,
{{ prefix }}_ingested_at desc,
{{ prefix }}_source_file desc,
{{ prefix }}_source_row desc nulls last
{%- endmacro %}

{#- Keep one row per key: the first in `source_order`. Written with a window function in
    a subquery so every adapter can run it. -#}
{% macro dedup(relation, key_columns) -%}
select * from (
    select
        src.*,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ source_order('src.') }}
        ) as _dedup_rank
    from {{ relation }} as src
) as ranked
where _dedup_rank = 1
{%- endmacro %}
