{{ config(
    materialized='incremental',
    unique_key='period_start',
    incremental_strategy='delete+insert',
) }}
-- The plan's KPIs in one long table: kpi x grain x period x scope -> value.
-- Ratio KPIs roll up from kpi_components (day and week for company and region,
-- week for distributors, month for every scope down to the store); KPIs that count
-- distinct people, stores or cohorts are computed per month in kpi_monthly.
-- Definitions, formulas and targets: kpis.yml (docs/kpis.md).
-- Incremental by period (retention, docs/privacy.md): with a retention cutoff, periods
-- starting before it keep the values built while their detail was in the lake
-- (macros/retention.sql); a full refresh recomputes them from anonymised rows.
{% set rollups = [
    ('day', 'company'), ('day', 'region'),
    ('week', 'company'), ('week', 'region'), ('week', 'distributor'),
    ('month', 'company'), ('month', 'region'), ('month', 'distributor'), ('month', 'store'),
] %}
{% set scope_columns = {
    'company': "'all'", 'region': 'region', 'distributor': 'distributor_code', 'store': 'store_code',
} %}
with components as (
    select * from {{ ref('kpi_components') }}
),

rolled as (
    {% for grain, scope in rollups %}
    select
        kpi,
        '{{ grain }}' as grain,
        {% if grain == 'day' -%}
        cast(date_day as date)
        {%- else -%}
        cast({{ dbt.date_trunc(grain, 'date_day') }} as date)
        {%- endif %} as period_start,
        '{{ scope }}' as scope_type,
        {{ scope_columns[scope] }} as scope_id,
        sum(numerator) / nullif(sum(denominator), 0) as value
    from components
    {% if scope != 'company' -%}
    where {{ scope_columns[scope] }} is not null
    {%- endif %}
    group by 1, 2, 3, 4, 5
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    kpi,
    grain,
    period_start,
    scope_type,
    scope_id,
    cast(value as double) as value
from rolled
where value is not null and {{ period_to_build('period_start') }}

union all

select
    kpi,
    grain,
    period_start,
    scope_type,
    scope_id,
    cast(value as double) as value
from {{ ref('kpi_monthly') }}
where value is not null and {{ period_to_build('period_start') }}
