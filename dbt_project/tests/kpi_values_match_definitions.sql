-- Every KPI in kpi_values is defined in kpis.yml (seed kpi_definitions). Returns the
-- offenders. (kpi_definitions_have_values warns about the converse.)
with defined as (
    select kpi from {{ ref('kpi_definitions') }}
),

computed as (
    select distinct kpi from {{ ref('kpi_values') }}
)

select c.kpi, 'computed but not defined in kpis.yml' as problem
from computed as c
left join defined as d on c.kpi = d.kpi
where d.kpi is null
