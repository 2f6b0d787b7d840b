"""Products: hit / long-tail / new / seasonal tags with reasons, sales by category and
how new products sell in their first weeks."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t, t_or

st.title(t("page.products"))
ui.require_published()
f = ui.filters()
scope = data.current_scope()
category_sql, category_params = ("and p.category = ?", (f.category,)) if f.category else ("", ())

# weekly units in the user's scope: region rows for HQ and regions, store rows below that
if scope.role in ("hq", "region"):
    region_sql = "and s.region = ?" if f.region else ""
    sales_sql = (
        "select s.week_start, s.sku_code, p.sku_name, p.category, s.qty "
        "from marts.fct_sales_region_sku_week s join marts.dim_product p using (sku_code) "
        f"where s.week_start between ? and ? {region_sql} {category_sql}"
    )
else:
    region_sql = "and st.region = ?" if f.region else ""
    sales_sql = (
        "select s.week_start, s.sku_code, p.sku_name, p.category, s.qty "
        "from marts.fct_sales_store_sku_week s join marts.dim_product p using (sku_code) "
        "join marts.dim_store st using (store_code) "
        f"where s.week_start between ? and ? {region_sql} {category_sql}"
    )
params = (f.start, f.end, *((f.region,) if f.region else ()), *category_params)
weekly = data.query(
    f"select week_start, category, sum(qty) as units from ({sales_sql}) group by all "
    "order by week_start",
    params,
)
by_sku = data.query(
    f"select sku_code, sku_name, category, sum(qty) as units from ({sales_sql}) group by all "
    "order by units desc",
    params,
)

st.subheader(t("products.by_category"))
if weekly.empty:
    st.info(t("products.no_sales"))
else:
    area = (
        alt.Chart(weekly)
        .mark_area()
        .encode(
            x=alt.X("week_start:T", title=t("common.week")),
            y=alt.Y("units:Q", stack=True, title=t("common.units")),
            color=alt.Color("category:N", title=t("common.category")),
            tooltip=["week_start:T", "category", alt.Tooltip("units:Q", format=",.0f")],
        )
        .properties(height=280)
    )
    ui.chart_with_table(area, weekly, "category_weeks")

# -- tags --------------------------------------------------------------------------------
st.subheader(t("products.tags"))
reason = "reason" if lang() == "zh" else "reason_en"
tags = data.query(
    f"select t.entity_id as sku_code, p.sku_name, p.category, t.tag, round(t.score, 3) as score, "
    f"t.{reason} as reason from marts.product_tags t "
    "join marts.dim_product p on p.sku_code = t.entity_id "
    "where t.as_of_date = (select max(as_of_date) from marts.product_tags) "
    f"{category_sql} order by t.tag, t.score desc",
    category_params,
)
if tags.empty:
    st.info(t("products.no_tags"))
else:
    tags["tag"] = tags.tag.map(lambda x: t_or(f"tag.{x}", x))
    tabs = st.tabs([f"{name} ({len(group)})" for name, group in tags.groupby("tag")])
    for tab, (_, group) in zip(tabs, tags.groupby("tag"), strict=True):
        with tab:
            ui.table(group.drop(columns=["tag"]))

# -- new products ------------------------------------------------------------------------
st.subheader(t("products.new"))
launches = data.query(
    f"select p.sku_code, p.sku_name, p.launch_date from marts.dim_product p "
    f"where p.launch_date > ? {category_sql} order by p.launch_date desc",
    (pd.Timestamp(f.end) - pd.Timedelta(days=365), *category_params),
)
success = data.query(
    "select period_start, value from marts.kpi_values where kpi = 'new_product_success' "
    "and grain = 'month' and scope_type = 'company' order by period_start desc limit 1"
)
if not success.empty:
    st.metric(
        t("products.success_rate", month=f"{pd.Timestamp(success.period_start.iloc[0]):%Y-%m}"),
        ui.fmt(success.value.iloc[0], "share"),
    )
if launches.empty:
    st.info(t("products.no_launches"))
else:
    curve_sql = sales_sql.replace(
        "where s.week_start between ? and ?", "where s.sku_code in (select unnest(?))"
    )
    curve_params = (
        launches.sku_code.tolist(),
        *((f.region,) if f.region else ()),
        *category_params,
    )
    curves = data.query(
        f"select sku_code, sku_name, week_start, sum(qty) as units from ({curve_sql}) "
        "group by all order by week_start",
        curve_params,
    )
    if curves.empty:
        st.info(t("products.no_launch_sales"))
    else:
        launch = launches.set_index("sku_code").launch_date
        curves["weeks_since_launch"] = (
            pd.to_datetime(curves.week_start) - pd.to_datetime(curves.sku_code.map(launch))
        ).dt.days // 7
        curves = curves[curves.weeks_since_launch.between(0, 26)]
        curves["cumulative_units"] = curves.groupby("sku_code").units.cumsum()
        line = (
            alt.Chart(curves)
            .mark_line(point=True)
            .encode(
                x=alt.X("weeks_since_launch:Q", title=t("products.weeks_since_launch")),
                y=alt.Y("cumulative_units:Q", title=t("products.cumulative_units")),
                color=alt.Color("sku_name:N", title=None),
                tooltip=["sku_name", "weeks_since_launch", "units", "cumulative_units"],
            )
            .properties(height=280)
        )
        ui.chart_with_table(line, curves, "launch_curves")

st.subheader(t("products.top"))
ui.table(by_sku, height=300)
