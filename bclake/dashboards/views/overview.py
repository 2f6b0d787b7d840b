"""Overview: the plan's KPIs against their targets, with trends, and by region."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t

HEADLINE = (
    "sell_through_amount",
    "sales_growth",
    "scan_rate",
    "channel_online_rate",
    "distribution_coverage",
    "diversion_rate",
    "on_time_delivery",
    "on_demand_coverage",
    "display_compliance",
    "repurchase_rate",
    "referral_rate",
    "profile_completeness",
    "marketing_roi",
)

st.title(t("page.overview"))
ui.require_published()
f = ui.filters()
scope = data.current_scope()

# the scope the cards speak for: the user's own, or the region picked in the sidebar
if scope.role == "hq":
    scope_type, scope_id = ("region", f.region) if f.region else ("company", "all")
else:
    scope_type, scope_id = scope.role, scope.scope_id
st.caption(t("overview.caption", scope=scope_id if scope_type != "company" else t("role.all")))

definitions = data.query("select * from reference.kpi_definitions").set_index("kpi")
label = f"label_{lang()}"


def monthly_values(columns: str, where: str, params: tuple) -> pd.DataFrame:
    """Complete months of `marts.kpi_values` in the sidebar's range: `columns` plus
    `period_start` and `value`, rows matching `where` (its `?` bound to `params`), oldest first."""
    return ui.complete_months(
        data.query(
            f"select {columns}, period_start, value from marts.kpi_values "
            f"where grain = 'month' and {where} and period_start between ? and ? "
            "order by period_start",
            (*params, f.start.replace(day=1), f.end),
        ),
        f.end,
    )


monthly = monthly_values("kpi", "scope_type = ? and scope_id = ?", (scope_type, scope_id))

if monthly.empty:
    st.info(t("overview.no_kpis"))
else:
    shown = [k for k in HEADLINE if k in set(monthly.kpi)]
    shown += sorted(set(monthly.kpi) - set(shown))
    per_row = 4
    for start in range(0, len(shown), per_row):
        cols = st.columns(per_row)
        for col, kpi in zip(cols, shown[start : start + per_row], strict=False):
            d = definitions.loc[kpi] if kpi in definitions.index else None
            series = monthly[monthly.kpi == kpi]
            last = series.iloc[-1]
            prev = series.iloc[-2] if len(series) > 1 else None
            unit = d["unit"] if d is not None else ""
            target = d["target"] if d is not None else None
            direction = d["direction"] if d is not None else "up"
            help_text = t("overview.target_none")
            if target is not None and not pd.isna(target):
                met = last.value >= target if direction == "up" else last.value <= target
                help_text = t(
                    "overview.target_met" if met else "overview.target_missed",
                    target=ui.fmt(target, unit),
                )
            col.metric(
                f"{d[label] if d is not None else kpi} · {pd.Timestamp(last.period_start):%Y-%m}",
                ui.fmt(last.value, unit),
                ui.fmt_delta(last.value - prev.value, unit) if prev is not None else None,
                delta_color="normal" if direction == "up" else "inverse",
                help=help_text,
                border=True,
                chart_data=series.value.tolist()[-12:],
                chart_type="line",
                delta_description=t("overview.vs_prev"),
            )

    # compare the parts of the user's scope: regions for HQ, distributors for a region,
    # stores for a distributor (a store has nothing below it)
    part = {"hq": "region", "region": "distributor", "distributor": "store"}.get(scope.role)
    if part is None:
        st.stop()
    st.subheader(t(f"overview.by_{part}"))
    at_level = set(
        data.query(
            "select distinct kpi from marts.kpi_values where grain = 'month' and scope_type = ?",
            (part,),
        ).kpi
    )
    options = [k for k in shown if k in at_level and k != "sales_growth"]
    if not options:
        st.info(t("overview.no_regions"))
        st.stop()
    kpi = st.selectbox(
        t("overview.kpi"),
        options,
        format_func=lambda k: definitions[label].get(k, k),
        key=f"overview_kpi_{lang()}",
    )
    by_part = monthly_values("scope_id as part", "scope_type = ? and kpi = ?", (part, kpi))
    if by_part.empty:
        st.info(t("overview.no_regions"))
    else:
        d = definitions.loc[kpi]
        latest = by_part[by_part.period_start == by_part.period_start.max()]
        bars = (
            alt.Chart(latest)
            .mark_bar()
            .encode(
                x=alt.X("value:Q", title=d[label]),
                y=alt.Y("part:N", sort="-x", title=t(f"common.{part}")),
                tooltip=["part", alt.Tooltip("value:Q", format=",.3f")],
            )
        )
        chart = bars
        if d["target"] is not None and not pd.isna(d["target"]):
            rule = (
                alt.Chart(pd.DataFrame({"target": [d["target"]]}))
                .mark_rule(color="#d62728", strokeDash=[4, 3])
                .encode(x="target:Q")
            )
            chart = bars + rule
        trend = (
            alt.Chart(by_part)
            .mark_line(point=True)
            .encode(
                x=alt.X("period_start:T", title=t("common.month")),
                y=alt.Y("value:Q", title=d[label]),
                color=alt.Color("part:N", title=t(f"common.{part}"), legend=alt.Legend(columns=2)),
                tooltip=["part", "period_start:T", alt.Tooltip("value:Q", format=",.3f")],
            )
        )
        # a trend of more than a dozen lines reads as noise: the dozen largest now
        top = latest.nlargest(12, "value").part
        trend = trend.transform_filter(alt.FieldOneOfPredicate("part", top.tolist()))
        left, right = st.columns(2)
        with left:
            height = max(300, 16 * len(latest))
            ui.chart_with_table(chart.properties(height=height), latest, "region_bars")
        with right:
            ui.chart_with_table(trend.properties(height=300), by_part, "region_trend")
        if d["target"] is not None and not pd.isna(d["target"]):
            st.caption(t("overview.target_line", target=ui.fmt(d["target"], d["unit"])))
