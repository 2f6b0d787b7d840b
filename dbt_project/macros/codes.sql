{#- The serial inside a printed product code: the 13-digit body modulo 10^10. -#}
{% macro code_serial(code) -%}
    {{ return(adapter.dispatch('code_serial', 'bclake')(code)) }}
{%- endmacro %}

{% macro default__code_serial(code) -%}
    case
        when {{ dbt.length(code) }} = 18
            then mod(cast(substring({{ code }}, 1, 13) as bigint), 10000000000)
    end
{%- endmacro %}

{#-
  Attach to every scan the case whose serial range holds its code (same SKU).
  DuckDB's ASOF join finds the last range starting at or before the serial in one
  pass; other adapters get a portable range join.
-#}
{% macro join_case_ranges(scans, cases) -%}
    {{ return(adapter.dispatch('join_case_ranges', 'bclake')(scans, cases)) }}
{%- endmacro %}

{% macro default__join_case_ranges(scans, cases) -%}
    select s.*, c.case_code, c.distributor_code, c.activation_date
    from {{ scans }} as s
    left join {{ cases }} as c
        on s.sku_code = c.sku_code
        and s.serial between c.first_serial and c.last_serial
{%- endmacro %}

{% macro duckdb__join_case_ranges(scans, cases) -%}
    select
        s.*,
        case when s.serial <= c.last_serial then c.case_code end as case_code,
        case when s.serial <= c.last_serial then c.distributor_code end as distributor_code,
        case when s.serial <= c.last_serial then c.activation_date end as activation_date
    from {{ scans }} as s
    asof left join {{ cases }} as c
        on s.sku_code = c.sku_code
        and s.serial >= c.first_serial
{%- endmacro %}
