"""Consumers: growth, scan rate, private-domain activity, retention cohorts, repurchase,
referral and the user-tag mix. Aggregates only: no consumer appears on screen."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t, t_or

C_SIDE = (
    "new_users",
    "user_growth",
    "scan_rate",
    "private_domain_activity",
    "retention_7",
    "retention_30",
    "retention_90",
    "repurchase_rate",
    "referral_rate",
    "aov",
    "targeted_conversion",
    "profile_completeness",
)
MIN_COHORT = 20  # smaller cohorts are hidden: a share of three people identifies them

st.title(t("page.consumers"))
ui.require_published()
f = ui.filters()
scope = data.current_scope()
scope_type, scope_id = (
    (("region", f.region) if f.region else ("company", "all"))
    if scope.role == "hq"
    else (scope.role, scope.scope_id)
)

kpis = data.query(
    "select k.kpi, k.period_start, k.value, d.label_zh, d.label_en, d.unit, d.target "
    "from marts.kpi_values k join reference.kpi_definitions d using (kpi) "
    "where k.grain = 'month' and k.scope_type = ? and k.scope_id = ? "
    "and k.kpi in (select unnest(?)) and k.period_start between ? and ? "
    "order by k.period_start",
    (scope_type, scope_id, list(C_SIDE), f.start.replace(day=1), f.end),
)
kpis = ui.complete_months(kpis, f.end)
if kpis.empty:
    st.info(t("consumers.no_kpis", scope=scope_id))
else:
    kpis["label"] = kpis[f"label_{lang()}"]
    shares = kpis[kpis.unit == "share"]
    counts = kpis[kpis.unit != "share"]
    st.subheader(t("consumers.rates"))
    if shares.empty:  # an empty chart would draw one meaningless axis tick
        st.info(t("consumers.no_rates", scope=scope_id))
    else:
        chart = (
            alt.Chart(shares)
            .mark_line(point=True)
            .encode(
                x=alt.X("period_start:T", title=t("common.month")),
                y=alt.Y("value:Q", title=None, axis=alt.Axis(format="%")),
                color=alt.Color(
                    "label:N", title=None, legend=alt.Legend(orient="bottom", columns=4)
                ),
                tooltip=["label", "period_start:T", alt.Tooltip("value:Q", format=".1%")],
            )
            .properties(height=320)
        )
        ui.chart_with_table(chart, shares[["label", "period_start", "value", "target"]], "c_rates")
    if not counts.empty:
        cols = st.columns(len(counts.kpi.unique()))
        for col, (_kpi, series) in zip(cols, counts.groupby("kpi"), strict=False):
            last = series.iloc[-1]
            col.metric(
                f"{last.label} · {pd.Timestamp(last.period_start):%Y-%m}",
                ui.fmt(last.value, last.unit),
                border=True,
                chart_data=series.value.tolist()[-12:],
            )

# -- retention cohorts -------------------------------------------------------------------
st.subheader(t("consumers.cohorts"))
source = "marts.fct_product_scans" if scope.role == "hq" else "marts.fct_store_scans"
st.caption(t("consumers.cohort_source_hq" if scope.role == "hq" else "consumers.cohort_source"))
cohorts = data.query(
    f"""
    with firsts as (
        select consumer_id, date_trunc('month', min(scan_date)) as cohort
        from {source} where consumer_id is not null group by 1
    ),
    active as (
        select distinct consumer_id, date_trunc('month', scan_date) as month
        from {source} where consumer_id is not null
    )
    select f.cohort, datediff('month', f.cohort, a.month) as months_after,
           count(*) as consumers
    from firsts f join active a using (consumer_id)
    where f.cohort between ? and ?
    group by all
    """,
    (f.start.replace(day=1), f.end),
)
if not cohorts.empty:
    size = cohorts[cohorts.months_after == 0].set_index("cohort").consumers
    cohorts["cohort_size"] = cohorts.cohort.map(size)
    cohorts = cohorts[(cohorts.cohort_size >= MIN_COHORT) & (cohorts.months_after <= 12)]
if cohorts.empty:  # no scans, or only cohorts too small to show
    st.info(t("consumers.no_cohorts", n=MIN_COHORT))
else:
    cohorts["retained"] = cohorts.consumers / cohorts.cohort_size
    heat = (
        alt.Chart(cohorts)
        .mark_rect()
        .encode(
            x=alt.X("months_after:O", title=t("consumers.months_after")),
            y=alt.Y("yearmonth(cohort):O", title=t("consumers.cohort")),
            color=alt.Color(
                "retained:Q", scale=alt.Scale(scheme="greens"), legend=alt.Legend(format="%")
            ),
            tooltip=[
                alt.Tooltip("yearmonth(cohort):O", title=t("consumers.cohort")),
                "months_after",
                "cohort_size",
                alt.Tooltip("retained:Q", format=".1%"),
            ],
        )
        .properties(height=360)
    )
    ui.chart_with_table(heat, cohorts.sort_values(["cohort", "months_after"]), "cohorts")

# -- user tags ----------------------------------------------------------------------------
st.subheader(t("consumers.tag_mix"))
if ui.hq_only():
    mix = data.query(
        "select tag, count(*) as consumers from marts.user_tags "
        "where as_of_date = (select max(as_of_date) from marts.user_tags) group by 1"
    )
    if mix.empty:
        st.info(t("consumers.no_tags"))
    else:
        mix["tag_label"] = mix.tag.map(
            lambda x: (
                t_or(f"tag.{x.split(':')[0]}", x) + (f" · {x.split(':', 1)[1]}" if ":" in x else "")
            )
        )
        bars = (
            alt.Chart(mix)
            .mark_bar()
            .encode(
                x=alt.X("consumers:Q", title=t("consumers.consumers")),
                y=alt.Y("tag_label:N", sort="-x", title=None),
                tooltip=["tag_label", "consumers"],
            )
            .properties(height=260)
        )
        ui.chart_with_table(bars, mix[["tag_label", "consumers"]], "user_tags")
