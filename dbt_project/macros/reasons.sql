{#-
  The reason text of every tag, in Chinese (`reason`) and English (`reason_en`), in one
  catalogue. A template names its parameters in braces; the tag model passes one SQL
  expression per parameter, which is cast to text. docs/tags.md explains each rule.
-#}
{% macro tag_reason_catalogue() -%}
    {{ return({
        'high_contribution_store': {
            'zh': '近{weeks}周进货额{amount_10k}万元，位列前{top_pct}%',
            'en': 'Bought {amount_10k} x10k CNY in {weeks} weeks, top {top_pct}% of stores',
        },
        'slow_moving_store': {
            'zh': '近{weeks}周进货额{amount_10k}万元，位列后{bottom_pct}%，动销慢',
            'en': 'Bought only {amount_10k} x10k CNY in {weeks} weeks, bottom {bottom_pct}% of stores',
        },
        'potential_store': {
            'zh': '配合度指数{engagement}（陈列达标、参与促销、小程序活跃），进货额居中，有提升空间',
            'en': 'Engagement index {engagement} (display compliance, promotion sign-ups, mini program)'
                ~ ' with mid-range purchases: room to grow',
        },
        'core_distributor': {
            'zh': '近{weeks}周出库额{amount_10k}万元，位列经销商前{top_pct}%',
            'en': 'Received {amount_10k} x10k CNY of shipments in {weeks} weeks, top {top_pct}% of distributors',
        },
        'hit_product': {
            'zh': '近52周门店进货{units}件，位列前{top_pct}%',
            'en': '{units} units bought by stores in 52 weeks, top {top_pct}% of SKUs',
        },
        'long_tail_product': {
            'zh': '近52周门店进货{units}件，位列后{bottom_pct}%',
            'en': 'Only {units} units in 52 weeks, bottom {bottom_pct}% of SKUs',
        },
        'new_product': {
            'zh': '上市{days}天的新品',
            'en': 'Launched {days} days ago',
        },
        'seasonal_product': {
            'zh': '销量最高的月份占全年{peak_pct}%，季节性明显',
            'en': "The peak month holds {peak_pct}% of the year's units",
        },
        'high_value_user': {
            'zh': 'RFM：最近{recency_days}天前活跃，{frequency}次互动，消费{monetary}元，位列前{top_pct}%',
            'en': 'RFM: last active {recency_days} days ago, {frequency} purchases and scans,'
                ~ ' {monetary} CNY spent; top {top_pct}%',
        },
        'price_sensitive_user': {
            'zh': '{scans}次扫码中{promo_scans}次在促销期，是本店顾客的{index}倍',
            'en': '{promo_scans} of {scans} scans on promotion, {index}x as often as other shoppers of the store',
        },
        'scenario_user_by_age': {
            'zh': '年龄{age}岁（已授权画像）',
            'en': 'Age {age} (profile consent given)',
        },
        'scenario_user_by_category': {
            'zh': '扫码的{share_pct}%为{category}',
            'en': '{share_pct}% of scans are {category}',
        },
        'new_user': {
            'zh': '注册{days}天',
            'en': 'Registered {days} days ago',
        },
    }) }}
{%- endmacro %}

{#-
  The reason of tag `code` in `lang` ('zh' or 'en') as one SQL text expression:
  `params` maps each parameter of the template to a SQL expression (cast to text) or to
  a number known at compile time (written into the text). A missing code, language or
  parameter fails to compile.
-#}
{% macro tag_reason(code, lang, params) -%}
    {%- set catalogue = tag_reason_catalogue() -%}
    {%- if code not in catalogue or lang not in catalogue[code] -%}
        {{ exceptions.raise_compiler_error('tag_reason: no ' ~ lang ~ ' text for ' ~ code) }}
    {%- endif -%}
    {#- split('{a}b{c}') alternates literal text (even places) and parameter names -#}
    {%- set parts = modules.re.split('\\{(\\w+)\\}', catalogue[code][lang]) -%}
    {%- set ns = namespace(text='', sql=[]) -%}
    {%- for part in parts -%}
        {%- if loop.index is odd -%}
            {%- set ns.text = ns.text ~ part -%}
        {%- elif part not in params -%}
            {{ exceptions.raise_compiler_error('tag_reason: ' ~ code ~ ' needs parameter ' ~ part) }}
        {%- elif params[part] is number -%}
            {%- set ns.text = ns.text ~ params[part] -%}
        {%- else -%}
            {%- if ns.text -%}
                {%- do ns.sql.append("'" ~ ns.text | replace("'", "''") ~ "'") -%}
            {%- endif -%}
            {%- set ns.text = '' -%}
            {%- do ns.sql.append('cast(' ~ params[part] ~ ' as varchar)') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.text or not ns.sql -%}
        {%- do ns.sql.append("'" ~ ns.text | replace("'", "''") ~ "'") -%}
    {%- endif -%}
    {{ ns.sql | join(' || ') }}
{%- endmacro %}

{#- Percentile position for a reason: `top 3%` of rank 0.97, at least 1. -#}
{% macro reason_top_pct(rank) -%}
    greatest(1, cast(ceiling((1 - {{ rank }}) * 100) as integer))
{%- endmacro %}

{% macro reason_bottom_pct(rank) -%}
    greatest(1, cast(ceiling({{ rank }} * 100) as integer))
{%- endmacro %}
