{#-
  The rows of `relation` ingested after the newest row already in this model.
  Lake parts carry one `_ingested_at` each, so Parquet statistics let the reader
  skip every part loaded before; a full refresh reads everything.
-#}
{% macro rows_ingested_since_last_run(relation) -%}
select * from {{ relation }}
{% if is_incremental() -%}
where _ingested_at > (select max(_ingested_at) from {{ this }})
{%- endif %}
{%- endmacro %}

{#-
  The rows of source `system.table` this run must decide between, for `dedup`: the rows
  ingested since the last run and, on an incremental run, the rows this model already
  holds for the keys those new rows touch. Deduplicated by `source_order`
  (macros/dedup.sql), a re-sent or backfilled older export then cannot replace a newer
  correction, and an incremental run keeps exactly the rows a full refresh would. Selects
  the staging columns and the source metadata (`_source_file`, `_source_row`,
  `_ingested_at`); use with `incremental_strategy='delete+insert'` on the staging key. A
  model built before it held the metadata gets null there (its rows rank as undated)
  until a full refresh.
-#}
{% macro rows_to_decide(system, table) -%}
{%- set key = staging_key(system, table) -%}
{%- set columns = staging_columns(system, table) -%}
{%- set meta = {'_source_file': 'varchar', '_source_row': 'bigint', '_ingested_at': none} -%}
select {{ (columns + meta.keys() | list) | join(', ') }}
from ({{ rows_ingested_since_last_run(source(system, table)) }}) as fresh
{% if is_incremental() -%}
{%- set held_columns = [] -%}
{%- for column in adapter.get_columns_in_relation(this) -%}
    {%- do held_columns.append(column.name) -%}
{%- endfor %}
union all
select
    {{ columns | join(', ') }},
    {% for name, type in meta.items() -%}
    {{ name if name in held_columns else 'cast(null as ' ~ type ~ ')' }} as {{ name }}
    {{- ',' if not loop.last }}
    {% endfor -%}
from {{ this }} as held
where exists (
    select 1 from ({{ rows_ingested_since_last_run(source(system, table)) }}) as fresh
    where {% for k in key %}fresh.{{ k }} = held.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
)
{%- endif %}
{%- endmacro %}
