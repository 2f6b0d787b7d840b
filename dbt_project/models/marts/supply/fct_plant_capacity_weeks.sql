-- Weekly capacity and output per plant x category from the ERP exports, one row per
-- plant x category x week; `is_latest` marks each plant x category's latest reported week,
-- the capacity the supply plan assumes for the weeks ahead.
with capacity as (
    select
        plant_code,
        any_value(plant_name) as plant_name,
        category,
        week_start,
        cast(sum(capacity_units) as bigint) as capacity_units
    from {{ ref('stg_erp__plant_capacity') }}
    group by plant_code, category, week_start
),

output as (
    select
        plant_code,
        category,
        week_start,
        cast(sum(output_units) as bigint) as output_units
    from {{ ref('fct_plant_output_weeks') }}
    where category is not null
    group by plant_code, category, week_start
)

select
    c.plant_code,
    c.plant_name,
    c.category,
    c.week_start,
    c.capacity_units,
    coalesce(o.output_units, 0) as output_units,
    coalesce(o.output_units, 0) / nullif(c.capacity_units, 0) as utilisation,
    c.week_start = max(c.week_start) over (partition by c.plant_code, c.category) as is_latest
from capacity as c
left join output as o
    on c.plant_code = o.plant_code and c.category = o.category and c.week_start = o.week_start
