-- generated from contracts/erp/invoices.yaml by `bclake contracts --dbt`; do not edit
-- Invoices to distributors, one per shipment.
with deduped as (
    {{ dedup(source('erp', 'invoices'), ['invoice_id']) }}
)

select
    invoice_id,
    shipment_id,
    distributor_code,
    invoice_date,
    due_date,
    amount,
    _source_file,
    _ingested_at
from deduped
