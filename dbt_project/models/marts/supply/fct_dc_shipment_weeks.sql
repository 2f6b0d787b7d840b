-- Units ordered from and shipped by each region's DC per SKU and Monday week (by ship
-- date): the demand the DCs see. A distributor whose order was cut short asks again for
-- what it still lacks, so its next order repeats the shortfall: `new_order_units`
-- counts each order net of the previous order's shortfall (same distributor and SKU,
-- placed within var supply_reask_days, 21), the demand a DC would have met had it
-- shipped in full. Without that netting a DC short for months looks as if its
-- demand grew every week by what it failed to ship. Shipments to a distributor
-- without a region have no DC here.
with lines as (
    select
        region,
        sku_code,
        distributor_code,
        order_date,
        ship_date,
        qty_ordered_units,
        qty_shipped_units,
        lag(qty_ordered_units - qty_shipped_units) over by_distributor as previous_shortfall,
        lag(order_date) over by_distributor as previous_order_date
    from {{ ref('fct_shipments') }}
    where ship_date is not null and region is not null
    window by_distributor as (
        partition by distributor_code, sku_code order by order_date, shipment_id
    )
),

netted as (
    select
        *,
        case
            when
                previous_order_date >= order_date - interval ({{ var('supply_reask_days') }}) day
                then greatest(0, qty_ordered_units - greatest(0, coalesce(previous_shortfall, 0)))
            else qty_ordered_units
        end as new_order_units
    from lines
)

select
    region,
    sku_code,
    cast({{ dbt.date_trunc('week', 'ship_date') }} as date) as week_start,
    cast(sum(qty_ordered_units) as bigint) as ordered_units,
    cast(sum(new_order_units) as bigint) as new_order_units,
    cast(sum(qty_shipped_units) as bigint) as shipped_units
from netted
group by region, sku_code, week_start
