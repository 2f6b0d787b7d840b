{{ config(severity='warn') }}
-- A defined KPI with no rows: its inputs are empty in this data (e.g. no SKU launched in
-- the window, so no new-product success rate). A warning, not an error: the data may
-- simply not hold the event yet.
with defined as (
    select kpi from {{ ref('kpi_definitions') }}
),

computed as (
    select distinct kpi from {{ ref('kpi_values') }}
)

select d.kpi, 'defined in kpis.yml but has no rows' as problem
from defined as d
left join computed as c on d.kpi = c.kpi
where c.kpi is null
