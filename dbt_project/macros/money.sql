{#- A yuan amount as text with two decimals (fen), for reasons and captions: 1234.5 -> 1234.50. -#}
{% macro yuan(amount) -%}
    printf('%.2f', {{ amount }})
{%- endmacro %}

{#- A rate as a percentage with up to two decimals: 0.015 -> 1.5. -#}
{% macro percent(rate) -%}
    cast(round(100 * {{ rate }}, 2) as varchar)
{%- endmacro %}
