-- The scans behind each raised alert: the drill-down and the verification case file.
-- Consumers appear only by their pseudonymous id.
select
    e.alert_id,
    e.scan_id,
    e.scan_time,
    e.product_code,
    e.case_code,
    e.batch_no,
    e.consumer_id,
    e.lat,
    e.lon,
    e.scan_city,
    e.scan_province,
    e.scan_region,
    round(e.km_to_territory, 0) as km_to_territory,
    e.before_activation
from {{ ref('fct_market_order_evidence') }} as e
inner join {{ ref('fct_market_order_alerts') }} as a on e.alert_id = a.alert_id
