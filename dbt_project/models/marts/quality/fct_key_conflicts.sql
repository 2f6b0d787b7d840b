-- Conflicting duplicates: every key that arrived more than once with different values,
-- one row per source table x key x differing column x losing copy, with both values,
-- both files and rows, and what decided the winner (the same `source_order` staging and
-- the incremental facts use: export date in the file path, then ingest time, then file
-- name, then row). Identical copies (a re-sent file, a doubled line) are not conflicts.
-- Values are shown as text, after ingest's pseudonymisation.
{#- tables with a column besides the key (a key-only table can only repeat itself) -#}
{%- set tables = [] -%}
{%- for system, table in contract_tables() -%}
{%- if staging_columns(system, table) | reject('in', staging_key(system, table)) | list -%}
{%- do tables.append((system, table)) -%}
{%- endif -%}
{%- endfor %}
with
{% for system, table in tables -%}
{%- set key = staging_key(system, table) -%}
{%- set name = system ~ '__' ~ table %}
{{ name }}__repeated as (
    select {{ key | join(', ') }}
    from {{ source(system, table) }}
    group by {{ key | join(', ') }}
    having count(*) > 1
),

{{ name }}__copies as (
    select
        '{{ system }}.{{ table }}' as source_table,
        {% for k in key -%}
        cast(src.{{ k }} as varchar){{ " || '|' || " if not loop.last }}
        {%- endfor %} as key_value,
        {% for column in staging_columns(system, table) -%}
        cast(src.{{ column }} as varchar) as {{ column }},
        {% endfor -%}
        src._source_file,
        src._source_row,
        src._ingested_at,
        {{ source_file_date('src._source_file') }} as file_date,
        row_number() over (
            partition by {% for k in key %}src.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            order by {{ source_order('src.') }}
        ) as place
    from {{ source(system, table) }} as src
    inner join {{ name }}__repeated using ({{ key | join(', ') }})
),

{{ name }}__conflicts as (
    {%- set columns = staging_columns(system, table) | reject('in', key) | list %}
    select
        kept.source_table,
        kept.key_value,
        differs.column_name,
        case differs.column_name
            {% for column in columns -%}
            when '{{ column }}' then kept.{{ column }}
            {% endfor -%}
        end as kept_value,
        case differs.column_name
            {% for column in columns -%}
            when '{{ column }}' then other.{{ column }}
            {% endfor -%}
        end as other_value,
        kept._source_file as kept_file,
        kept._source_row as kept_row,
        other._source_file as other_file,
        other._source_row as other_row,
        case
            when
                kept.file_date is not null
                and coalesce(kept.file_date <> other.file_date, other.file_date is null)
                then 'export_date'
            when kept._ingested_at <> other._ingested_at then 'ingest_time'
            when kept._source_file <> other._source_file then 'file_name'
            else 'row_order'
        end as decided_by
    from {{ name }}__copies as kept
    inner join {{ name }}__copies as other
        on kept.key_value = other.key_value and kept.place = 1 and other.place > 1
    inner join (
        {% for column in columns -%}
        select '{{ column }}' as column_name{{ ' union all' if not loop.last }}
        {% endfor -%}
    ) as differs
        on case differs.column_name
            {% for column in columns -%}
            when '{{ column }}' then kept.{{ column }} is distinct from other.{{ column }}
            {% endfor -%}
        end
){{ ',' if not loop.last }}
{% endfor %}
{% for system, table in tables -%}
select * from {{ system ~ '__' ~ table }}__conflicts
{% if not loop.last %}union all
{% endif -%}
{%- endfor %}
