-- Who the next campaigns may target: one row per consumer x product category (the offer's
-- category) at the newest snapshot, consumers with marketing consent only (their latest
-- consent: a withdrawal in a later export removes them). Features as in
-- fct_campaign_uplift_training, so the uplift model scores them the way it learned.
with categories as (
    select distinct category from {{ ref('dim_product') }}
)

select
    f.consumer_id,
    k.category as offer_category,
    f.snapshot_date,
    f.consent_marketing,
    {% for column in marketing_feature_columns() -%}
    f.{{ column }},
    {% endfor -%}
    {{ marketing_offer_columns('cf', 'f') }}
from {{ ref('fct_marketing_features') }} as f
inner join {{ ref('dim_consumer') }} as c on f.consumer_id = c.consumer_id
cross join categories as k
left join {{ ref('fct_marketing_category_features') }} as cf
    on f.snapshot_date = cf.snapshot_date
    and f.consumer_id = cf.consumer_id
    and k.category = cf.category
where f.is_newest and c.consent_marketing
