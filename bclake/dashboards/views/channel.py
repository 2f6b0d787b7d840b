"""Channel: stores and distributors, their tags and reasons, coverage, turnover, diversion."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t, t_or

st.title(t("page.channel"))
ui.require_published()
f = ui.filters()
region_sql, region_params = ("and region = ?", (f.region,)) if f.region else ("", ())

stores = data.query(
    "select store_code, store_name, channel_type, region, province, city, lat, lon, "
    f"distributor_code, has_pos, mini_program_active from marts.dim_store where true {region_sql}",
    region_params,
)
distributors = data.query(
    f"select distributor_code from marts.dim_distributor where true {region_sql}", region_params
)
cols = st.columns(4)
cols[0].metric(t("channel.stores"), f"{len(stores):,}", border=True)
cols[1].metric(t("channel.distributors"), f"{len(distributors):,}", border=True)
if not stores.empty:
    cols[2].metric(t("channel.pos_share"), f"{stores.has_pos.mean() * 100:.0f}%", border=True)
    cols[3].metric(
        t("channel.online_share"), f"{stores.mini_program_active.mean() * 100:.0f}%", border=True
    )

# -- tags with their reasons ---------------------------------------------------------
st.subheader(t("channel.tags"))
reason = "reason" if lang() == "zh" else "reason_en"
tags = data.query(
    f"select c.entity_type, c.entity_id, c.tag, c.as_of_date, round(c.score, 3) as score, "
    f"c.{reason} as reason, coalesce(s.region, d.region) as region "
    "from marts.channel_tags c "
    "left join marts.dim_store s on c.entity_type = 'store' and s.store_code = c.entity_id "
    "left join marts.dim_distributor d "
    "  on c.entity_type = 'distributor' and d.distributor_code = c.entity_id "
    "where c.as_of_date = (select max(as_of_date) from marts.channel_tags)"
)
if f.region and not tags.empty:
    tags = tags[tags.region == f.region]
if tags.empty:
    st.info(t("channel.no_tags"))
else:
    tags["tag_label"] = tags.tag.map(lambda x: t_or(f"tag.{x}", x))
    left, right = st.columns([1, 2])
    with left:
        ui.count_bars(tags, "tag_label", "tag_counts")
    with right:
        picked = st.multiselect(
            t("channel.pick_tags"),
            sorted(tags.tag_label.unique()),
            key=f"channel_tags_{lang()}",
            placeholder=t("common.choose"),
        )
        shown = tags[tags.tag_label.isin(picked)] if picked else tags
        st.caption(t("channel.as_of", day=pd.Timestamp(tags.as_of_date.max()).date()))
        ui.table(shown[["entity_id", "tag_label", "score", "reason", "region"]], height=260)

# -- map -----------------------------------------------------------------------------
st.subheader(t("channel.map"))
if stores.empty:
    st.info(t("channel.no_stores"))
else:
    store_tags = (
        tags[tags.entity_type == "store"].groupby("entity_id").tag_label.first()
        if not tags.empty
        else pd.Series(dtype=str)
    )
    points = (
        stores.assign(tag=stores.store_code.map(store_tags).fillna(t("channel.untagged")))
        .rename(columns={"store_code": "store", "store_name": "name"})[
            ["store", "name", "tag", "lon", "lat"]
        ]
        .dropna(subset=["lon", "lat"])
    )  # a store without coordinates is listed, not mapped
    by_province = (
        stores.groupby("province", as_index=False).size().rename(columns={"size": "stores"})
    )
    ui.chart_with_table(
        ui.province_map(by_province, "stores", t("channel.stores"), points, "tag"),
        by_province.sort_values("stores", ascending=False),
        "store_map",
    )

# -- coverage, turnover and diversion over time -----------------------------------------
st.subheader(t("channel.trends"))
scope = data.current_scope()
level = {"distributor": "distributor", "store": "store"}.get(scope.role, "region")
kpis = (
    ("display_compliance", "on_time_delivery", "order_to_delivery_days", "store_satisfaction")
    if level == "store"
    else ("distribution_coverage", "inventory_turnover", "diversion_rate", "channel_online_rate")
)
trend = data.query(
    "select kpi, scope_id, period_start, value from marts.kpi_values "
    "where grain = 'month' and scope_type = ? and kpi in (select unnest(?)) "
    "and period_start between ? and ? order by period_start",
    (level, list(kpis), f.start.replace(day=1), f.end),
)
if f.region and level == "region":
    trend = trend[trend.scope_id == f.region]
if trend.empty:
    st.info(t("channel.no_trends"))
else:
    labels = data.query("select kpi, label_zh, label_en from reference.kpi_definitions")
    names = labels.set_index("kpi")[f"label_{lang()}"]
    trend["kpi_label"] = trend.kpi.map(names)
    # one full-width chart per KPI, each on its own scale (a facet's panels would not fit a phone)
    charts = [
        alt.Chart(part, title=name)
        .mark_line(point=True)
        .encode(
            x=alt.X("period_start:T", title=t("common.month")),
            y=alt.Y("value:Q", title=None),
            # a store or distributor sees one line: no legend to name it
            color=alt.Color(
                "scope_id:N",
                title=t(f"common.{level}"),
                legend=alt.Legend() if trend.scope_id.nunique() > 1 else None,
            ),
            tooltip=[
                "kpi_label",
                "scope_id",
                "period_start:T",
                alt.Tooltip("value:Q", format=",.3f"),
            ],
        )
        .properties(height=170)
        for name, part in trend.groupby("kpi_label", sort=True)
    ]
    ui.chart_with_table(charts, trend.drop(columns=["kpi"]), "channel_trends")
    st.caption(t("channel.diversion_note"))
