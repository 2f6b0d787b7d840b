{#-
  The consumer feature columns of marts.fct_marketing_features that the uplift training
  rows and the targeting candidates carry, in one list, so both tables hold the same
  features (bclake/ml/uplift.py learns from one and scores the other).
-#}
{% macro marketing_feature_columns() -%}
    {{ return([
        'register_channel', 'tenure_days', 'age_band', 'city_tier', 'consumer_region',
        'home_store_code', 'home_region', 'home_distributor_code', 'home_channel_type',
        'home_size_class', 'home_city_tier', 'home_high_contribution', 'home_potential',
        'home_slow_moving', 'orders', 'order_amount', 'avg_order_amount', 'recency_days',
        'coupon_orders', 'coupon_order_share', 'stores_visited', 'scans', 'promo_scans',
        'promo_scan_share', 'promo_index', 'evening_scan_share', 'weekend_scan_share', 'categories_scanned',
        'top_category', 'top_category_share', 'coupons_received', 'coupons_redeemed',
        'coupon_redemption_rate', 'times_held_out', 'held_out_purchases',
        'held_out_purchase_rate', 'groups_joined', 'group_interactions', 'referrals_made',
    ]) }}
{%- endmacro %}

{#-
  Offer-specific features: the consumer's history in the offer's category (`cf`, a row of
  marts.fct_marketing_category_features, may be missing) against all categories (`f`).
-#}
{% macro marketing_offer_columns(cf, f) -%}
    coalesce({{ cf }}.scans, 0) as offer_category_scans,
    coalesce({{ cf }}.scans, 0) * 1.0 / nullif({{ f }}.scans, 0) as offer_category_share,
    {{ cf }}.promo_scans * 1.0 / nullif({{ cf }}.scans, 0) as offer_category_promo_share,
    coalesce({{ cf }}.coupons_received, 0) as offer_coupons_received,
    coalesce({{ cf }}.coupons_redeemed, 0) as offer_coupons_redeemed,
    coalesce({{ cf }}.times_held_out, 0) as offer_times_held_out,
    coalesce({{ cf }}.held_out_purchases, 0) as offer_held_out_purchases
{%- endmacro %}
