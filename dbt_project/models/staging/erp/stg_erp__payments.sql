-- generated from contracts/erp/payments.yaml by `bclake contracts --dbt`; do not edit
-- Payments received from distributors against invoices.
with deduped as (
    {{ dedup(source('erp', 'payments'), ['payment_id']) }}
)

select
    payment_id,
    invoice_id,
    distributor_code,
    pay_date,
    amount,
    _source_file,
    _ingested_at
from deduped
