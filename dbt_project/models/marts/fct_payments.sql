-- Distributor payments against invoices, with days from invoice to payment (DSO basis).
select
    p.payment_id,
    p.invoice_id,
    p.distributor_code,
    d.region,
    i.invoice_date,
    i.due_date,
    p.pay_date,
    p.amount,
    {{ dbt.datediff('i.invoice_date', 'p.pay_date', 'day') }} as days_to_pay,
    p.pay_date <= i.due_date as paid_on_time
from {{ ref('stg_erp__payments') }} as p
left join {{ ref('stg_erp__invoices') }} as i on p.invoice_id = i.invoice_id
left join {{ ref('stg_dms__distributors') }} as d on p.distributor_code = d.distributor_code
