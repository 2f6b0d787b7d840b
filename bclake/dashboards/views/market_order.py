"""Market order (市场秩序): diversion, forged-code and cloned-code alerts, their evidence,
the diversion rate against its target, and the review form (HQ and regions).

Every query goes through the scoped views (`dashboards.data`): a region sees the alerts
that start or end in it, a distributor those about its goods or its territory, a store
none. Review decisions are written as landing files (`dashboards.review`) for the next
pipeline run; nothing here writes to the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, review, ui
from bclake.dashboards.i18n import lang, t

KINDS = ("diversion", "forged_code", "cloned_code")
STATUSES = ui.ALERT_STATUSES
DIVERSION_TARGET = 0.05  # dbt_project/kpis.yml; read from reference.kpi_definitions when there


def kind_label(kind: str) -> str:
    return t(f"mo_kind.{kind}") if kind in KINDS else str(kind)


status_label = ui.alert_status


def load_alerts() -> pd.DataFrame:
    """Every alert in scope, newest week first, surest first within a week."""
    return data.query(
        "select * from marts.fct_market_order_alerts order by week_start desc, score desc, alert_id"
    )


def queue_filters(alerts: pd.DataFrame) -> pd.DataFrame:
    """The queue's filters (kind, status, region, distributor, minimum score); the rows
    that pass, in the same order."""
    top = st.columns(3)
    kinds = top[0].multiselect(
        t("market_order.kind"),
        KINDS,
        default=list(KINDS),
        format_func={k: kind_label(k) for k in KINDS}.get,
        key=f"mo_kinds_{lang()}",
    )
    statuses = top[1].multiselect(
        t("market_order.status"),
        STATUSES,
        default=[s for s in STATUSES if s != "dismissed"],
        format_func={s: status_label(s) for s in STATUSES}.get,
        key=f"mo_statuses_{lang()}",
    )
    min_score = top[2].slider(
        t("market_order.min_score"), 0.0, 1.0, 0.0, step=0.05, key="mo_min_score"
    )
    bottom = st.columns(2)
    # labels are made here, in the run's language: a format_func may be called later
    everything = t("market_order.all")
    regions = sorted(set(alerts.origin_region.dropna()) | set(alerts.destination_region.dropna()))
    sidebar_region = ui.filters().region
    region = bottom[0].selectbox(
        t("market_order.region"),
        [ui.ALL, *regions],
        index=1 + regions.index(sidebar_region) if sidebar_region in regions else 0,
        format_func=lambda r: everything if r == ui.ALL else r,
        key=f"mo_region_{lang()}",
    )
    names = (
        alerts.dropna(subset=["distributor_code"])
        .drop_duplicates("distributor_code")
        .set_index("distributor_code")
        .distributor_name.to_dict()
    )
    distributor = bottom[1].selectbox(
        t("market_order.distributor"),
        [ui.ALL, *sorted(names)],
        format_func=lambda d: everything if d == ui.ALL else f"{d} {names.get(d) or ''}",
        key=f"mo_distributor_{lang()}",
    )
    keep = alerts.kind.isin(kinds) & alerts.status.isin(statuses) & (alerts.score >= min_score)
    if region != ui.ALL:
        keep &= (alerts.origin_region == region) | (alerts.destination_region == region)
    if distributor != ui.ALL:
        keep &= alerts.distributor_code == distributor
    return alerts[keep]


def headline(alerts: pd.DataFrame) -> None:
    """Alerts awaiting review, alerts by kind (dismissed ones left out), and the cases the
    open ones are estimated to involve."""
    cols = st.columns(4)
    active = alerts[alerts.status.isin(["open", "reopened"])]
    standing = alerts[alerts.status != "dismissed"]
    cols[0].metric(t("market_order.open_alerts"), f"{len(active):,}", border=True)
    cols[1].metric(
        t("market_order.diversion_alerts"),
        f"{(standing.kind == 'diversion').sum():,}",
        border=True,
    )
    cols[2].metric(
        t("market_order.code_alerts"), f"{(standing.kind != 'diversion').sum():,}", border=True
    )
    cols[3].metric(
        t("market_order.est_cases"),
        f"{pd.to_numeric(active.estimated_cases, errors='coerce').fillna(0).sum():,.0f}",
        border=True,
    )


def queue_table(shown: pd.DataFrame) -> None:
    reason = "reason_zh" if lang() == "zh" else "reason_en"
    frame = pd.DataFrame(
        {
            t("market_order.week"): pd.to_datetime(shown.week_start).dt.date,
            t("market_order.kind"): shown.kind.map(kind_label),
            t("market_order.score"): shown.score.round(2),
            t("market_order.status"): shown.status.map(status_label),
            t("common.distributor"): (
                shown.distributor_code.fillna("–") + " " + shown.distributor_name.fillna("")
            ).str.strip(),
            t("common.sku_name"): shown.sku_name,
            t("market_order.route"): shown.origin_province.fillna("–")
            + " → "
            + shown.destination_provinces.fillna("–"),
            t("market_order.scans"): shown.scans,
            t("market_order.cases"): shown.estimated_cases,
            t("market_order.reason"): shown[reason],
            "alert_id": shown.alert_id,
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=ui.table_height(len(frame), 360),
        column_config={
            t("market_order.score"): st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format="%.2f", width="small"
            ),
            t("market_order.reason"): st.column_config.TextColumn(width="large"),
        },
        key="mo_queue",
    )


def diversion_trend() -> None:
    """Monthly diversion rate of the user's scope against the plan's target."""
    st.subheader(t("market_order.trend"))
    scope = data.current_scope()
    f = ui.filters()
    if scope.role == "hq":
        scope_type, scope_id = ("region", f.region) if f.region else ("company", "all")
    else:
        scope_type, scope_id = scope.role, scope.scope_id
    trend = ui.complete_months(
        data.query(
            "select period_start, value from marts.kpi_values where kpi = 'diversion_rate' "
            "and grain = 'month' and scope_type = ? and scope_id = ? "
            "and period_start between ? and ? order by period_start",
            (scope_type, scope_id, f.start.replace(day=1), f.end),
        ),
        f.end,
    )
    if trend.empty:
        st.info(t("market_order.no_trend"))
        return
    targets = data.query(
        "select target from reference.kpi_definitions where kpi = 'diversion_rate'"
    )
    target = (
        float(targets.target.iloc[0])
        if not targets.empty and pd.notna(targets.target.iloc[0])
        else DIVERSION_TARGET
    )
    line = (
        alt.Chart(trend)
        .mark_line(point=True)
        .encode(
            x=alt.X("period_start:T", title=t("common.month"), axis=alt.Axis(format="%Y-%m")),
            y=alt.Y("value:Q", title=t("market_order.rate"), axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("period_start:T", title=t("common.month"), format="%Y-%m"),
                alt.Tooltip("value:Q", title=t("market_order.rate"), format=".1%"),
            ],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"target": [target]}))
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(y="target:Q")
    )
    ui.chart_with_table((line + rule).properties(height=240), trend, "mo_trend")
    st.caption(t("market_order.trend_caption", target=ui.fmt(target, "share")))


def alert_option(alerts: pd.DataFrame) -> Callable[[str], str]:
    """The selectboxes' label of an alert id: week · kind · distributor · product · score
    (made now, in the run's language)."""
    labels = {
        a.alert_id: (
            f"{pd.Timestamp(a.week_start).date()} · {kind_label(a.kind)} · "
            f"{a.distributor_code if pd.notna(a.distributor_code) else '–'} · "
            f"{a.sku_name} · {a.score:.2f}"
        )
        for a in alerts.itertuples()
    }
    return lambda alert_id: labels.get(alert_id, alert_id)


def evidence_map(alert: pd.Series, scans: pd.DataFrame) -> None:
    st.markdown(f"**{t('market_order.map')}**")
    stores = pd.DataFrame(columns=["store_code", "lon", "lat"])
    if pd.notna(alert.distributor_code):
        stores = data.query(
            "select store_code, store_name, city, lon, lat from marts.dim_store "
            "where distributor_code = ? and lon is not null and lat is not null",
            (alert.distributor_code,),
        )
    points = pd.concat(
        [
            pd.DataFrame(
                {
                    "what": t("market_order.map_store"),
                    "name": stores.get("store_code", pd.Series(dtype=str)),
                    "city": stores.get("city", pd.Series(dtype=str)),
                    "lon": stores.lon,
                    "lat": stores.lat,
                }
            ),
            pd.DataFrame(
                {
                    "what": t("market_order.map_scan"),
                    "name": scans.scan_time.astype(str).str[:16],
                    "city": scans.scan_city,
                    "lon": scans.lon,
                    "lat": scans.lat,
                }
            ),
        ],
        ignore_index=True,
    ).dropna(subset=["lon", "lat"])
    by_province = (
        scans.groupby("scan_province", as_index=False)
        .size()
        .rename(columns={"scan_province": "province", "size": "scans"})
    )
    ui.chart_with_table(
        ui.province_map(by_province, "scans", t("market_order.scans"), points, "what"),
        points,
        "mo_map",
    )
    st.caption(t("market_order.map_caption"))


def case_codes(alert: pd.Series, scans: pd.DataFrame) -> None:
    st.markdown(f"**{t('market_order.case_codes')}**")
    cases = scans.dropna(subset=["case_code"])
    if cases.empty:
        st.caption(t("market_order.no_cases"))
    else:
        per_case = (
            cases.groupby("case_code", as_index=False)
            .agg(scans=("scan_id", "count"), codes=("product_code", "nunique"))
            .sort_values("scans", ascending=False)
            .rename(
                columns={
                    "case_code": t("market_order.case_code"),
                    "scans": t("market_order.scans"),
                    "codes": t("market_order.codes"),
                }
            )
        )
        st.dataframe(
            per_case,
            hide_index=True,
            width="stretch",
            height=ui.table_height(len(per_case), 250),
        )
    if pd.notna(alert.batch_nos) and alert.batch_nos:
        st.caption(t("market_order.batches", batches=alert.batch_nos.replace(",", ", ")))


def timeline(scans: pd.DataFrame) -> None:
    st.markdown(f"**{t('market_order.timeline')}**")
    before = scans.before_activation.fillna(False).astype(bool)
    after_label, before_label = (
        t("market_order.after_activation"),
        t("market_order.before_activation"),
    )
    daily = (
        scans.assign(
            day=pd.to_datetime(scans.scan_time).dt.strftime("%Y-%m-%d"),
            when=before.map({True: before_label, False: after_label}),
        )
        .groupby(["day", "when"], as_index=False)
        .size()
        .rename(columns={"size": "scans"})
    )
    chart = (
        alt.Chart(daily)
        .mark_bar()
        .encode(
            # days as categories: one bar a day, however few days there are
            x=alt.X("day:O", title=t("market_order.day"), axis=alt.Axis(labelAngle=-45)),
            y=alt.Y(
                "scans:Q",
                title=t("market_order.scans"),
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            color=alt.Color(
                "when:N",
                title=None,
                scale=alt.Scale(
                    domain=[after_label, before_label],
                    range=["#4c78a8", "#e45756"],
                ),
            ),
            tooltip=[
                alt.Tooltip("day:O", title=t("market_order.day")),
                "when",
                alt.Tooltip("scans:Q", title=t("market_order.scans")),
            ],
        )
        .properties(height=200)
    )
    ui.chart_with_table(chart, daily, "mo_timeline")


def evidence(shown: pd.DataFrame) -> str | None:
    """The drill-down of one alert picked from the filtered queue; returns its id."""
    st.subheader(t("market_order.evidence"))
    alert = ui.pick_alert(
        shown, t("market_order.pick_alert"), alert_option(shown), f"mo_alert_{lang()}"
    )
    if alert is None:
        return None
    alert_id = alert["alert_id"]
    st.markdown(alert.reason_zh if lang() == "zh" else alert.reason_en)
    # one line, not four cards: on a phone cards would push the map a screen down
    km = alert.km_from_territory
    facts = (
        (t("market_order.scans"), f"{int(alert.scans):,}"),
        (t("market_order.consumers"), f"{int(alert.consumers):,}"),
        (t("market_order.cases"), f"{alert.estimated_cases:,.0f}"),
        (t("market_order.km"), "–" if pd.isna(km) else f"{km:,.0f}"),
    )
    st.markdown(" · ".join(f"{name} **{value}**" for name, value in facts))
    scans = data.query(
        "select * from marts.fct_market_order_alert_scans where alert_id = ? order by scan_time",
        (alert_id,),
    )
    if scans.empty:
        st.info(t("market_order.no_scans"))
    else:
        evidence_map(alert, scans)
        left, right = st.columns(2)
        with left:
            case_codes(alert, scans)
        with right:
            timeline(scans)
    ui.decision_history(alert, "scans")
    return alert_id


st.title(t("page.market_order"))
ui.require_published()
if data.current_scope().role == "store":
    st.info(t("market_order.store_none"))
    st.stop()
if not data.has_table("marts.fct_market_order_alerts"):
    st.info(t("market_order.no_table"))
    st.stop()
st.caption(t("market_order.caption"))

alerts = load_alerts()
if alerts.empty:
    st.info(t("market_order.none"))
    diversion_trend()
    st.stop()
headline(alerts)
st.subheader(t("market_order.queue"))
shown = queue_filters(alerts)
st.caption(t("market_order.shown", n=len(shown), total=len(alerts)))
if shown.empty:
    st.info(t("market_order.none_filtered"))
else:
    queue_table(shown)
diversion_trend()
if not shown.empty:
    picked = evidence(shown)
    if data.current_scope().role in review.REVIEW_ROLES:
        ui.review_form("mo_review", shown, "scans", alert_option(shown), picked)
