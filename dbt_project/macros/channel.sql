{#-
  Channel optimisation (渠道优化) unit costs from the vars the warehouse asset passes from
  config/channel.yaml (`ChannelConfig.dbt_vars`); docs/channel.md.
-#}

{#- Gross margin share of list value of a product `category` (column), by the var
    channel_margin_share, else channel_margin_share_default. -#}
{% macro channel_margin_share(category) -%}
    case {{ category }}
        {%- for name, share in var('channel_margin_share').items() %}
        when '{{ name }}' then {{ share }}
        {%- endfor %}
        else {{ var('channel_margin_share_default') }}
    end
{%- endmacro %}

{#- Yuan per rep visit at a store of city `tier` (column), by the var channel_visit_cost. -#}
{% macro channel_visit_cost(tier) -%}
    case cast({{ tier }} as varchar)
        {%- for t, cost in var('channel_visit_cost').items() %}
        when '{{ t }}' then {{ cost }}
        {%- endfor %}
        else {{ var('channel_visit_cost_default') }}
    end
{%- endmacro %}

{#- The first day after the channel window (the day after the last store order) and
    its first day and the first day of its recent half, as a one-row CTE body. -#}
{% macro channel_window() -%}
    select
        max(order_date) + 1 as window_end,
        max(order_date) + 1 - 7 * {{ var('channel_window_weeks') }} as window_start,
        max(order_date) + 1 - 7 * ({{ var('channel_window_weeks') }} // 2) as recent_start
    from {{ ref('fct_store_orders') }}
{%- endmacro %}
