-- Store x SKU x day units and value sold, from stores whose POS reports.
select
    st.store_code,
    st.sku_code,
    st.biz_date,
    sum(st.qty) as qty,
    sum(st.amount) as amount
from {{ ref('stg_dms__sell_through') }} as st
group by st.store_code, st.sku_code, st.biz_date
