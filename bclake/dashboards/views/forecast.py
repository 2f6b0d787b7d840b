"""Forecast and replenishment: a series explorer with its P10–P90 fan and actuals, the
backtest against baselines, and the order suggestions with their reasons."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t, t_or

st.title(t("page.forecast"))
ui.require_published()
f = ui.filters()
scope = data.current_scope()

# which forecast grain this user can see, with its actuals
LEVELS = {
    "region": (
        "ml.forecast_region_sku_week",
        "region",
        "select week_start, qty from marts.fct_sales_region_sku_week "
        "where region = ? and sku_code = ? and week_start >= ? order by week_start",
    ),
    "distributor": (
        "ml.forecast_distributor_sku_week",
        "distributor_code",
        "select s.week_start, sum(s.qty) as qty from marts.fct_sales_store_sku_week s "
        "join marts.dim_store d using (store_code) where d.distributor_code = ? "
        "and s.sku_code = ? and s.week_start >= ? group by 1 order by 1",
    ),
    "store": (
        "ml.forecast_store_sku_week",
        "store_code",
        "select week_start, qty from marts.fct_sales_store_sku_week "
        "where store_code = ? and sku_code = ? and week_start >= ? order by week_start",
    ),
}
available = {
    "hq": ("region", "distributor", "store"),
    "region": ("region", "distributor", "store"),
    "distributor": ("distributor", "store"),
    "store": ("store",),
}[scope.role]

st.subheader(t("forecast.explorer"))
c1, c2, c3 = st.columns(3)
level = c1.selectbox(
    t("forecast.level"), available, format_func=lambda v: t(f"common.{v}"), key=f"fc_level_{lang()}"
)
table, key_col, actual_sql = LEVELS[level]
category_sql, category_params = ("and p.category = ?", (f.category,)) if f.category else ("", ())
region_sql = ""
region_params: tuple = ()
if f.region and level != "region":
    region_sql = (
        "and f.store_code in (select store_code from marts.dim_store where region = ?)"
        if level == "store"
        else "and f.distributor_code in "
        "(select distributor_code from marts.dim_distributor where region = ?)"
    )
    region_params = (f.region,)
elif f.region:
    region_sql, region_params = "and f.region = ?", (f.region,)
series = data.query(
    f"select distinct f.{key_col} as series, f.sku_code, p.sku_name from {table} f "
    f"join marts.dim_product p using (sku_code) where true {region_sql} {category_sql} "
    "order by 1, 2",
    (*region_params, *category_params),
)
if series.empty:
    st.info(t("forecast.no_series"))
else:
    key = c2.selectbox(t(f"common.{level}"), series.series.unique(), key=f"fc_series_{level}")
    options = series[series.series == key]
    names = options.set_index("sku_code").sku_name
    sku = c3.selectbox(
        t("common.sku"),
        options.sku_code,
        format_func=lambda c: f"{c} {names.get(c, '')}",
        key=f"fc_sku_{level}",
    )
    forecast = data.query(
        f"select week_start, p10, p50, p90, forecast_source from {table} "
        f"where {key_col} = ? and sku_code = ? order by week_start",
        (key, sku),
    )
    history_from = pd.Timestamp(forecast.week_start.min()) - pd.Timedelta(weeks=52)
    actual = data.query(actual_sql, (key, sku, history_from.date()))
    if not forecast.empty:
        actual = actual[pd.to_datetime(actual.week_start) < pd.Timestamp(forecast.week_start.min())]
    x = alt.X("week_start:T", title=t("common.week"), axis=alt.Axis(format="%Y-%m-%d"))
    band = (
        alt.Chart(forecast)
        .mark_area(opacity=0.25, color="#1f77b4")
        .encode(x=x, y=alt.Y("p10:Q", title=t("common.units")), y2="p90:Q")
    )
    median = (
        alt.Chart(forecast)
        .mark_line(color="#1f77b4", strokeDash=[4, 3])
        .encode(x=x, y="p50:Q", tooltip=["week_start:T", "p10:Q", "p50:Q", "p90:Q"])
    )
    history = (
        alt.Chart(actual)
        .mark_line(color="#444")
        .encode(x=x, y="qty:Q", tooltip=["week_start:T", "qty:Q"])
    )
    ui.chart_with_table(
        (band + median + history).properties(height=320),
        pd.concat([actual.assign(kind="actual"), forecast.assign(kind="forecast")]),
        "fan",
    )
    st.caption(t("forecast.fan_caption"))

# -- backtest --------------------------------------------------------------------------
st.subheader(t("forecast.backtest"))
grain = st.radio(
    t("forecast.grain"),
    ("region", "store"),
    format_func=lambda g: t(f"forecast.grain_{g}"),
    horizontal=True,
    key=f"fc_grain_{lang()}",
)
scores = data.query(
    f"select method, horizon, wape, mase, bias, pinball, coverage, rows "
    f"from ml.forecast_{grain}_sku_week_scores order by method, horizon"
)
if scores.empty:
    st.info(t("forecast.no_scores"))
else:
    scores["method_label"] = scores.method.map(lambda m: t_or(f"method.{m}", m))
    overall = scores[scores.horizon.isna()].sort_values("wape")
    per_h = scores[scores.horizon.notna()]
    st.dataframe(
        overall[["method_label", "wape", "mase", "bias", "pinball", "coverage", "rows"]],
        hide_index=True,
        width="stretch",
        column_config={
            "method_label": t("forecast.method"),
            "wape": st.column_config.NumberColumn("WAPE", format="percent"),
            "mase": st.column_config.NumberColumn("MASE", format="%.3f"),
            "bias": st.column_config.NumberColumn(t("forecast.bias"), format="percent"),
            "pinball": st.column_config.NumberColumn("pinball", format="%.3f"),
            "coverage": st.column_config.NumberColumn(t("forecast.coverage"), format="percent"),
            "rows": st.column_config.NumberColumn(t("forecast.rows_scored"), format="%d"),
        },
    )
    st.caption(t("forecast.backtest_caption"))
    line = (
        alt.Chart(per_h)
        .mark_line(point=True)
        .encode(
            x=alt.X("horizon:O", title=t("forecast.horizon")),
            y=alt.Y("wape:Q", title="WAPE", axis=alt.Axis(format="%")),
            color=alt.Color("method_label:N", title=None, legend=alt.Legend(labelLimit=300)),
            tooltip=["method_label", "horizon", alt.Tooltip("wape:Q", format=".1%")],
        )
        .properties(height=260)
    )
    ui.chart_with_table(line, per_h.drop(columns=["method"]), "wape_by_h")

# -- suggestions -----------------------------------------------------------------------
st.subheader(t("forecast.suggestions"))
kind = st.radio(
    t("forecast.suggestion_level"),
    ("store", "distributor") if scope.role != "store" else ("store",),
    format_func=lambda k: t(f"common.{k}"),
    horizontal=True,
    key=f"fc_kind_{lang()}",
)
reason = "reason_zh" if lang() == "zh" else "reason_en"
id_cols = "r.store_code, r.distributor_code" if kind == "store" else "r.distributor_code"
suggestions = data.query(
    f"select r.region, {id_cols}, r.sku_code, p.sku_name, r.as_of, r.suggested_qty, r.rule, "
    f"r.order_up_to, r.on_hand, r.on_order, r.order_multiple, r.{reason} as reason "
    f"from ml.replenishment_{kind}_sku r join marts.dim_product p using (sku_code) "
    f"where true {'and r.region = ?' if f.region else ''} {category_sql} "
    "order by r.suggested_qty desc",
    (*((f.region,) if f.region else ()), *category_params),
)
if suggestions.empty:
    st.info(t("forecast.no_suggestions"))
else:
    suggestions["rule_label"] = suggestions.rule.map(lambda r: t_or(f"rule.{r}", r))
    rules = st.multiselect(
        t("forecast.rules"),
        sorted(suggestions.rule_label.unique()),
        key=f"fc_rules_{kind}_{lang()}",
        placeholder=t("common.choose"),
    )
    only_orders = st.toggle(t("forecast.only_orders"), value=True, key=f"fc_only_{kind}")
    shown = suggestions
    if rules:
        shown = shown[shown.rule_label.isin(rules)]
    if only_orders:
        shown = shown[shown.suggested_qty > 0]
    m1, m2, m3 = st.columns(3)
    m1.metric(t("forecast.rows"), f"{len(shown):,}", border=True)
    m2.metric(t("forecast.units"), f"{shown.suggested_qty.sum():,.0f}", border=True)
    m3.metric(t("forecast.as_of"), str(pd.Timestamp(suggestions.as_of.max()).date()), border=True)
    left, right = st.columns([1, 3])
    with left:
        ui.count_bars(suggestions, "rule_label", f"rules_{kind}", height=240)
    with right:
        first = ["suggested_qty", "rule_label", "reason"]
        ordered = first + [c for c in shown.columns if c not in (*first, "rule")]
        ui.table(shown[ordered].assign(as_of=pd.to_datetime(shown.as_of).dt.date), height=320)
