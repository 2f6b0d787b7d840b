{#- generated from contracts/*/*.yaml by `bclake contracts --dbt`; do not edit -#}

{#-
  The columns of the staging model of source table `system.table`: contract
  columns, then derived ones; lineage columns such as _ingested_at excluded.
  Models that read a source directly (the incremental facts) select these, so
  they carry exactly what the staging model does.
-#}
{% macro staging_columns(system, table) -%}
    {%- set lists = {
        'cdp': {
            'campaign_members': [
                'campaign_id',
                'consumer_id',
                'arm',
                'assigned_date',
            ],
            'campaigns': [
                'campaign_id',
                'campaign_name',
                'category',
                'start_date',
                'end_date',
                'coupon_value',
                'target_size',
                'holdout_size',
            ],
            'community_groups': [
                'group_id',
                'store_code',
                'group_name',
                'created_date',
            ],
            'consumers': [
                'consumer_id',
                'phone',
                'gender',
                'birth_year',
                'city',
                'register_channel',
                'register_date',
                'consent_marketing',
                'consent_profile',
            ],
            'coupons': [
                'coupon_id',
                'campaign_id',
                'consumer_id',
                'issued_date',
                'expire_date',
                'face_value',
                'redeemed_time',
                'redeemed_store_code',
                'order_amount',
            ],
            'erasure_requests': [
                'request_id',
                'consumer_id',
                'phone',
                'requested_at',
                'reason',
            ],
            'group_members': [
                'group_id',
                'consumer_id',
                'join_date',
            ],
            'interactions': [
                'interaction_id',
                'group_id',
                'consumer_id',
                'interaction_type',
                'interaction_time',
                'interaction_date',
            ],
            'referrals': [
                'referral_id',
                'referrer_id',
                'referee_id',
                'referral_date',
                'channel',
            ],
        },
        'code': {
            'case_activations': [
                'case_code',
                'sku_code',
                'first_serial',
                'last_serial',
                'distributor_code',
                'warehouse_code',
                'activation_time',
                'activation_date',
            ],
            'product_scans': [
                'scan_id',
                'product_code',
                'sku_code',
                'batch_no',
                'scan_time',
                'lat',
                'lon',
                'consumer_id',
                'reward_amount',
                'scan_date',
            ],
            'store_scans': [
                'scan_id',
                'store_code',
                'consumer_id',
                'scan_time',
                'order_amount',
                'coupon_id',
                'rating',
                'scan_date',
            ],
        },
        'dms': {
            'display_checks': [
                'check_id',
                'store_code',
                'check_date',
                'compliant',
                'score',
                'photo_count',
                'photo_hash',
            ],
            'distributors': [
                'distributor_code',
                'distributor_name',
                'tier',
                'region',
                'province',
                'city',
            ],
            'promotion_signups': [
                'promo_id',
                'store_code',
                'signup_date',
            ],
            'promotions': [
                'promo_id',
                'region',
                'sku_code',
                'start_date',
                'end_date',
                'discount',
                'mechanism',
            ],
            'rebates': [
                'rebate_id',
                'payee_type',
                'payee_code',
                'programme_id',
                'period_start',
                'paid_date',
                'amount',
            ],
            'sell_through': [
                'report_id',
                'store_code',
                'biz_date',
                'sku_code',
                'qty',
                'amount',
            ],
            'store_inventory': [
                'report_id',
                'store_code',
                'snapshot_date',
                'sku_code',
                'on_hand_units',
            ],
            'store_orders': [
                'order_id',
                'store_code',
                'distributor_code',
                'order_date',
                'delivery_date',
                'order_source',
                'sku_code',
                'qty_ordered',
                'qty_delivered',
                'amount',
            ],
            'stores': [
                'store_code',
                'store_name',
                'channel_type',
                'size_class',
                'region',
                'province',
                'city',
                'lat',
                'lon',
                'distributor_code',
                'onboard_date',
                'has_pos',
                'mini_program_active',
                'is_partner',
            ],
        },
        'erp': {
            'dc_inventory': [
                'snapshot_date',
                'warehouse_code',
                'sku_code',
                'on_hand_units',
            ],
            'invoices': [
                'invoice_id',
                'shipment_id',
                'distributor_code',
                'invoice_date',
                'due_date',
                'amount',
            ],
            'payments': [
                'payment_id',
                'invoice_id',
                'distributor_code',
                'pay_date',
                'amount',
            ],
            'plant_capacity': [
                'week_start',
                'plant_code',
                'plant_name',
                'category',
                'capacity_units',
            ],
            'plant_output': [
                'week_start',
                'plant_code',
                'sku_code',
                'output_units',
            ],
            'products': [
                'sku_code',
                'sku_name',
                'category',
                'case_pack',
                'list_price',
                'retail_price',
                'launch_date',
                'shelf_life_days',
            ],
            'shipments': [
                'shipment_id',
                'distributor_code',
                'warehouse_code',
                'order_date',
                'ship_date',
                'sku_code',
                'qty_ordered_units',
                'qty_shipped_units',
                'amount',
            ],
            'warehouses': [
                'warehouse_code',
                'warehouse_name',
                'warehouse_type',
                'region',
                'city',
            ],
        },
        'market': {
            'competitor_prices': [
                'month',
                'province',
                'category',
                'competitor_price_index',
                'promo_intensity',
            ],
            'market_share': [
                'month',
                'province',
                'category',
                'brand_share',
            ],
        },
        'review': {
            'alert_decisions': [
                'decision_id',
                'alert_id',
                'decision',
                'reason',
                'penalty_amount',
                'decided_by',
                'decided_at',
                'evidence_scans',
                'decided_date',
            ],
        },
    } -%}
    {%- if table not in lists.get(system, {}) -%}
        {{ exceptions.raise_compiler_error('staging_columns: no contract for ' ~ system ~ '.' ~ table) }}
    {%- endif -%}
    {{ return(lists[system][table]) }}
{%- endmacro %}

{#-
  The primary key of source table `system.table` (its contract's primary_key).
-#}
{% macro staging_key(system, table) -%}
    {%- set lists = {
        'cdp': {
            'campaign_members': [
                'campaign_id',
                'consumer_id',
            ],
            'campaigns': [
                'campaign_id',
            ],
            'community_groups': [
                'group_id',
            ],
            'consumers': [
                'consumer_id',
            ],
            'coupons': [
                'coupon_id',
            ],
            'erasure_requests': [
                'request_id',
            ],
            'group_members': [
                'group_id',
                'consumer_id',
            ],
            'interactions': [
                'interaction_id',
            ],
            'referrals': [
                'referral_id',
            ],
        },
        'code': {
            'case_activations': [
                'case_code',
            ],
            'product_scans': [
                'scan_id',
            ],
            'store_scans': [
                'scan_id',
            ],
        },
        'dms': {
            'display_checks': [
                'check_id',
            ],
            'distributors': [
                'distributor_code',
            ],
            'promotion_signups': [
                'promo_id',
                'store_code',
            ],
            'promotions': [
                'promo_id',
            ],
            'rebates': [
                'rebate_id',
            ],
            'sell_through': [
                'report_id',
                'sku_code',
            ],
            'store_inventory': [
                'report_id',
                'sku_code',
            ],
            'store_orders': [
                'order_id',
                'sku_code',
            ],
            'stores': [
                'store_code',
            ],
        },
        'erp': {
            'dc_inventory': [
                'snapshot_date',
                'warehouse_code',
                'sku_code',
            ],
            'invoices': [
                'invoice_id',
            ],
            'payments': [
                'payment_id',
            ],
            'plant_capacity': [
                'week_start',
                'plant_code',
                'category',
            ],
            'plant_output': [
                'week_start',
                'plant_code',
                'sku_code',
            ],
            'products': [
                'sku_code',
            ],
            'shipments': [
                'shipment_id',
                'sku_code',
            ],
            'warehouses': [
                'warehouse_code',
            ],
        },
        'market': {
            'competitor_prices': [
                'month',
                'province',
                'category',
            ],
            'market_share': [
                'month',
                'province',
                'category',
            ],
        },
        'review': {
            'alert_decisions': [
                'decision_id',
            ],
        },
    } -%}
    {%- if table not in lists.get(system, {}) -%}
        {{ exceptions.raise_compiler_error('staging_key: no contract for ' ~ system ~ '.' ~ table) }}
    {%- endif -%}
    {{ return(lists[system][table]) }}
{%- endmacro %}

{#- Every source table that has a contract, as [system, table] pairs. -#}
{% macro contract_tables() -%}
    {{ return([['cdp', 'campaign_members'], ['cdp', 'campaigns'], ['cdp', 'community_groups'], ['cdp', 'consumers'], ['cdp', 'coupons'], ['cdp', 'erasure_requests'], ['cdp', 'group_members'], ['cdp', 'interactions'], ['cdp', 'referrals'], ['code', 'case_activations'], ['code', 'product_scans'], ['code', 'store_scans'], ['dms', 'display_checks'], ['dms', 'distributors'], ['dms', 'promotion_signups'], ['dms', 'promotions'], ['dms', 'rebates'], ['dms', 'sell_through'], ['dms', 'store_inventory'], ['dms', 'store_orders'], ['dms', 'stores'], ['erp', 'dc_inventory'], ['erp', 'invoices'], ['erp', 'payments'], ['erp', 'plant_capacity'], ['erp', 'plant_output'], ['erp', 'products'], ['erp', 'shipments'], ['erp', 'warehouses'], ['market', 'competitor_prices'], ['market', 'market_share'], ['review', 'alert_decisions']]) }}
{%- endmacro %}
