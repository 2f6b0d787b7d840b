-- The plant that makes each SKU: the one with the most output over the SKU's latest
-- reported weeks (var sku_plant_weeks, 13; ties: the lower plant code), with the units
-- it made in the latest week.
-- A SKU never produced has no row; the supply plan names it as having no plant.
with recent as (
    select
        sku_code,
        plant_code,
        week_start,
        output_units,
        max(week_start) over (partition by sku_code) as last_week
    from {{ ref('stg_erp__plant_output') }}
),

ranked as (
    select
        sku_code,
        plant_code,
        cast(sum(output_units) as bigint) as recent_output_units,
        any_value(last_week) as last_week,
        cast(sum(output_units) filter (where week_start = last_week) as bigint) as last_week_units
    from recent
    where week_start > last_week - interval ({{ var('sku_plant_weeks') }} * 7) day
    group by sku_code, plant_code
)

select
    r.sku_code,
    r.plant_code,
    p.category,
    r.recent_output_units,
    r.last_week as last_output_week,
    coalesce(t.last_week_units, 0) as last_output_units
from ranked as r
inner join {{ ref('dim_product') }} as p on r.sku_code = p.sku_code
left join (
    select
        sku_code,
        cast(sum(last_week_units) as bigint) as last_week_units
    from ranked
    group by sku_code
) as t on r.sku_code = t.sku_code
qualify row_number() over (partition by r.sku_code order by r.recent_output_units desc, r.plant_code) = 1
