{#-
  Retention (docs/privacy.md, bclake.ingest.retention): consumer-level detail dated before
  the cutoff has left the lake. The pipeline passes the cutoff, the first day whose detail
  is kept, as the var `retention_cutoff` (ISO date; empty when retention is off or the
  lake holds no dated row).
-#}
{% macro retention_cutoff() -%}
{{ return(var('retention_cutoff', '') | string) }}
{%- endmacro %}

{#-
  A condition keeping the periods an incremental KPI model builds on this run: on an
  incremental run with a cutoff, periods starting on or after it; the model's rows of
  earlier periods stay as they were built from full detail (delete+insert by the period,
  so those rows are never deleted). Otherwise every period (`true`). A full refresh
  recomputes every period, the early ones from the anonymised rows.
-#}
{% macro period_to_build(column) -%}
{%- if retention_cutoff() and is_incremental() -%}
{{ column }} >= cast('{{ retention_cutoff() }}' as date)
{%- else -%}
true
{%- endif -%}
{%- endmacro %}

{#-
  Post-hook of an incremental fact holding consumer-level rows: its rows dated before the
  cutoff lose `columns`, as the lake's rows did (an incremental fact keeps the rows it
  built before, which no rebuild from the lake would clear).
-#}
{% macro retention_anonymise(date_column, columns) -%}
{%- if retention_cutoff() -%}
update {{ this }}
set {% for c in columns %}{{ c }} = null{{ ', ' if not loop.last }}{% endfor %}
where
    {{ date_column }} < cast('{{ retention_cutoff() }}' as date)
    and ({% for c in columns %}{{ c }} is not null{{ ' or ' if not loop.last }}{% endfor %})
{%- else -%}
select 1 as no_cutoff
{%- endif -%}
{%- endmacro %}
