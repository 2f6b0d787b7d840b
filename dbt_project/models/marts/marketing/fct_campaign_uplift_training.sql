-- The uplift model's training rows: one per campaign x member, the offer (category,
-- coupon value), the arm, the outcome in the campaign window (fct_campaign_responses) and
-- the member's features as of the day before the campaign started (fct_marketing_features,
-- nothing from the window or later), with the offer-specific history in the offer's
-- category. `learnable` and `fault` come from fct_campaign_quality: the model learns only
-- from learnable campaigns and reports the others.
select
    r.campaign_id,
    r.consumer_id,
    q.category as offer_category,
    q.coupon_value,
    q.start_date,
    q.end_date,
    f.snapshot_date,
    q.learnable,
    q.fault,
    r.arm = 'treated' as treated,
    r.responded,
    r.orders as window_orders,
    r.order_amount as window_order_amount,
    r.redeemed_coupon,
    {% for column in marketing_feature_columns() -%}
    f.{{ column }},
    {% endfor -%}
    {{ marketing_offer_columns('cf', 'f') }}
from {{ ref('fct_campaign_responses') }} as r
inner join {{ ref('fct_campaign_quality') }} as q on r.campaign_id = q.campaign_id
inner join {{ ref('fct_marketing_features') }} as f
    on r.consumer_id = f.consumer_id
    and f.snapshot_date = cast({{ dbt.dateadd('day', -1, 'q.start_date') }} as date)
left join {{ ref('fct_marketing_category_features') }} as cf
    on f.snapshot_date = cf.snapshot_date
    and f.consumer_id = cf.consumer_id
    and q.category = cf.category
