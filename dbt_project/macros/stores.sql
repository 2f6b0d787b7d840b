{#-
  A store's segment for the store plans: its channel and its city's tier, e.g. '便利店 T2'
  ('?' for a city without a tier). `channel` and `tier` are SQL expressions.
-#}
{% macro store_segment(channel, tier) -%}
    {{ channel }} || ' T' || coalesce(cast({{ tier }} as varchar), '?')
{%- endmacro %}

{#-
  True where `column` lies in the `n` `unit`s up to `as_of`: after as_of - n, up to and
  including as_of. `column` and `as_of` are SQL expressions, `n` a number.
-#}
{% macro in_trailing_window(column, n, unit='day', as_of='a.as_of_date') -%}
    ({{ column }} > {{ dbt.dateadd(unit, -n, as_of) }} and {{ column }} <= {{ as_of }})
{%- endmacro %}
