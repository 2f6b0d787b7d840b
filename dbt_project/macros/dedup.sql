{#-
  Keep one row per key: the one ingested last (a re-sent or corrected file wins),
  then the latest row within that file. Written with a window function in a
  subquery so every adapter can run it.
-#}
{% macro dedup(relation, key_columns) -%}
select * from (
    select
        src.*,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by _ingested_at desc, _source_file desc, _source_row desc
        ) as _dedup_rank
    from {{ relation }} as src
) as ranked
where _dedup_rank = 1
{%- endmacro %}
