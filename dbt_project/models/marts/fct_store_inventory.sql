-- Store stock counts reported through the DMS, one row per store x SKU x snapshot day.
select
    i.store_code,
    i.sku_code,
    i.snapshot_date,
    i.on_hand_units,
    s.region,
    s.distributor_code
from {{ ref('stg_dms__store_inventory') }} as i
left join {{ ref('stg_dms__stores') }} as s on i.store_code = s.store_code
