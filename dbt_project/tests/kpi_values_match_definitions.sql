-- Every KPI in kpi_values is defined in kpis.yml (seed kpi_definitions), and every
-- defined KPI has rows. Returns the offenders.
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

union all

select d.kpi, 'defined in kpis.yml but has no rows' as problem
from defined as d
left join computed as c on d.kpi = c.kpi
where c.kpi is null
