{#-
  Great-circle distance in km between two points in degrees (haversine, earth
  radius 6371 km); null when any coordinate is null. Portable SQL: radians, sin,
  cos, asin and sqrt exist on every adapter bclake runs on. (Not least(1, x): on
  DuckDB least() skips nulls, which would turn a missing point into 20,015 km.)
-#}
{% macro km_between(lat1, lon1, lat2, lon2) -%}
    (2 * 6371.0 * asin(sqrt({{ _unit_clip(
        'power(sin(radians((' ~ lat2 ~ ') - (' ~ lat1 ~ ')) / 2), 2)
        + cos(radians(' ~ lat1 ~ ')) * cos(radians(' ~ lat2 ~ '))
        * power(sin(radians((' ~ lon2 ~ ') - (' ~ lon1 ~ ')) / 2), 2)'
    ) }})))
{%- endmacro %}

{% macro _unit_clip(x) -%}
    case when ({{ x }}) > 1 then 1.0 else ({{ x }}) end
{%- endmacro %}
