-- Units ordered from and shipped by each region's DC per SKU and Monday week (by ship
-- date): the demand the DCs see, against which the supply plan calibrates the spread of
-- its demand forecast. Shipments to a distributor without a region have no DC here.
select
    region,
    sku_code,
    cast({{ dbt.date_trunc('week', 'ship_date') }} as date) as week_start,
    cast(sum(qty_ordered_units) as bigint) as ordered_units,
    cast(sum(qty_shipped_units) as bigint) as shipped_units
from {{ ref('fct_shipments') }}
where ship_date is not null and region is not null
group by region, sku_code, week_start
