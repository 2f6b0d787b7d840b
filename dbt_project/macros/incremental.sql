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
