"""Shared building blocks of the pages: login, sidebar filters, charts with tables, maps,
and the alert review form the market-order and incentive pages share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from bclake.core.settings import Settings
from bclake.dashboards import data, review
from bclake.dashboards.auth import SignInThrottled, UsersFileError, authenticate
from bclake.dashboards.geometry import provinces
from bclake.dashboards.i18n import t

ALL = "__all__"
# the sidebar filters persist across pages and languages, so their one label is bilingual
ALL_LABEL = "全部 All"


# -- login -------------------------------------------------------------------------


def login_page() -> None:
    """The only page an unauthenticated visitor can reach."""
    st.title(t("login.title"))
    st.caption(t("login.caption"))
    with st.form("login"):
        username = st.text_input(t("login.username"))
        password = st.text_input(t("login.password"), type="password")
        submitted = st.form_submit_button(t("login.submit"), type="primary")
    if submitted:
        try:
            user = authenticate(username, password, client=client_address())
        except SignInThrottled as error:
            st.error(t("login.throttled", seconds=math.ceil(error.retry_after)))
            return
        except UsersFileError as error:  # names the file and the entry, no content
            st.error(str(error))
            return
        if user is None:
            st.error(t("login.failed"))
            return
        st.session_state.user = user
        st.rerun()


def client_address() -> str | None:
    """Where this session connects from, for the sign-in throttle: the peer's IP address;
    for a peer on this host (a reverse proxy in front), the last `X-Forwarded-For` hop it
    added; None for a local visit without one."""
    address = st.context.ip_address
    if address is None:
        forwarded = st.context.headers.get("X-Forwarded-For", "")
        address = forwarded.rsplit(",", 1)[-1].strip() or None
    return address


def logout() -> None:
    for key in list(st.session_state):
        if key != "lang":
            del st.session_state[key]


# -- alert review (market-order and reward-fraud alerts) ----------------------------

ALERT_STATUSES = ("open", "reopened", "confirmed", "penalised", "dismissed")


def alert_status(status: str) -> str:
    """An alert's review status in the UI language (unknown values as they are)."""
    return t(f"mo_status.{status}") if status in ALERT_STATUSES else str(status)


def decision_history(alert: pd.Series, evidence: str) -> None:
    """The alert's last decision (who, when, penalty, reason), its earlier ones when the
    model keeps them, and a warning when evidence grew since; `evidence` names the
    alert's evidence-count column (`scans`, `events`)."""
    st.markdown(f"**{t('review.history')}**")
    if pd.isna(alert.get("last_decision")) or not alert.get("last_decision"):
        st.caption(t("review.no_history"))
        return
    decided_at = pd.Timestamp(alert.decided_at).strftime("%Y-%m-%d %H:%M")
    text = t(
        "review.decided",
        decision=alert_status(alert.last_decision),
        by=alert.decided_by,
        at=decided_at,
    )
    if pd.notna(alert.get("penalty_amount")) and alert.get("penalty_amount"):
        text += " · " + t("review.penalty", amount=f"{alert.penalty_amount:,.0f}")
    if pd.notna(alert.get("decision_reason")) and alert.decision_reason:
        text += f" · {alert.decision_reason}"
    st.markdown(text)
    if pd.notna(alert.get("decision_history")):
        for entry in str(alert.decision_history).split("; "):
            st.caption(entry)
    then = alert.get("scans_at_decision")
    if pd.notna(then) and int(then) < int(alert[evidence]):
        st.warning(t("review.new_evidence", then=int(then), now=int(alert[evidence])))


def review_form(
    key: str,
    alerts: pd.DataFrame,
    evidence: str,
    option: Callable[[str], str],
    picked: str | None,
) -> None:
    """One decision (confirm, dismiss, penalise) for one or more of `alerts` (`alert_id`
    and the evidence-count column `evidence`), written as a landing file for the next run
    (`review.write_decisions`); `option` labels an alert id, `picked` is preselected.
    `key` names the form (one per page). Only `review.REVIEW_ROLES` may call it."""
    st.subheader(t("review.title"))
    st.caption(t("review.note"))
    settings = Settings.from_env()
    waiting = review.pending_decisions(settings, data.published_version())
    if waiting:
        st.info(t("review.pending", n=len(waiting)))
    with st.form(key):
        chosen = st.multiselect(
            t("review.alerts"),
            alerts.alert_id.tolist(),
            default=[picked] if picked else [],
            format_func=option,
            placeholder=t("common.choose"),
        )
        decision = st.radio(
            t("review.decision"),
            review.DECISIONS,
            format_func={d: t(f"mo_decision.{d}") for d in review.DECISIONS}.get,
            horizontal=True,
        )
        reason = st.text_area(t("review.reason"), max_chars=500)
        amount = st.number_input(
            t("review.amount"), min_value=0.0, value=0.0, step=1000.0, format="%.2f"
        )
        submitted = st.form_submit_button(t("review.submit"), type="primary")
    if not submitted:
        return
    counts = alerts.set_index("alert_id")[evidence]
    rows = [
        review.Decision(
            alert_id=a,
            decision=decision,
            reason=reason.strip() or None,
            penalty_amount=amount if decision == "penalised" else None,
            evidence_scans=int(counts[a]),
        )
        for a in chosen
    ]
    try:
        path = review.write_decisions(settings, st.session_state.user, rows)
    except review.DecisionError as error:
        known = ("reason_required", "amount_required", "no_alerts")
        st.error(
            t(f"review.{error.code}") if error.code in known else t("review.not_saved", error=error)
        )
        return
    except OSError as error:
        st.error(t("review.not_saved", error=error))
        return
    st.success(t("review.saved", n=len(rows), file=path.name))


# -- filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    region: str | None
    category: str | None


def _window() -> tuple[date, date]:
    """First and last day with sales in the warehouse (the past year when there are none)."""
    window = data.data_window()
    if window is None:
        today = date.today()
        return today - timedelta(days=365), today
    return window


def _default_range() -> tuple[date, date]:
    lo, hi = _window()
    return max(lo, hi - timedelta(days=364)), hi


def sidebar_filters() -> None:
    """Date range, region and category; widgets live in the entry script, so they persist."""
    lo, hi = _window()
    default = _default_range()
    st.sidebar.date_input(
        t("filter.dates"), value=default, min_value=lo, max_value=hi, key="f_dates"
    )
    regions = data.query("select distinct region from marts.dim_store order by 1")
    region_options = [ALL, *regions.region.tolist()] if not regions.empty else [ALL]
    st.sidebar.selectbox(
        t("filter.region"),
        region_options,
        key="f_region",
        format_func=lambda r: ALL_LABEL if r == ALL else r,
    )
    categories = data.query("select distinct category from marts.dim_product order by 1")
    st.sidebar.selectbox(
        t("filter.category"),
        [ALL, *categories.category.tolist()] if not categories.empty else [ALL],
        key="f_category",
        format_func=lambda c: ALL_LABEL if c == ALL else c,
    )


def filters() -> Filters:
    """The filters the user set in the sidebar (the same on every page)."""
    dates = st.session_state.get("f_dates") or ()
    if len(dates) == 2:
        start, end = dates
    else:  # not set yet, or half-picked: the last year of data
        start, end = _default_range()
        start = dates[0] if dates else start
    region = st.session_state.get("f_region", ALL)
    category = st.session_state.get("f_category", ALL)
    return Filters(
        start, end, None if region == ALL else region, None if category == ALL else category
    )


# -- page furniture ----------------------------------------------------------------


def sidebar_status() -> None:
    """When the data on screen was published, and whether a run is preparing newer data."""
    status = data.warehouse_status()
    if status.published_at is None:
        st.sidebar.caption(t("status.never"))
    else:
        st.sidebar.caption(t("status.published", time=f"{status.published_at:%Y-%m-%d %H:%M}"))
    if status.build_at is not None:
        key = "status.running" if status.running else "status.stopped"
        st.sidebar.caption(t(key, time=f"{status.build_at:%m-%d %H:%M}"))


def require_published() -> None:
    """Stop the page with a hint when no warehouse has been published yet."""
    if data.published_version() is None:
        st.info(t("common.unpublished"))
        st.stop()


def complete_months(frame: pd.DataFrame, end: date) -> pd.DataFrame:
    """Rows of months that ended by `end`: a month still being reported would look like
    a collapse next to complete ones."""
    if frame.empty:
        return frame
    month_end = pd.to_datetime(frame.period_start) + pd.offsets.MonthBegin(1)
    return frame[month_end <= pd.Timestamp(end) + pd.Timedelta(days=1)]


def hq_only() -> bool:
    """True for HQ users; others get a note that this view is brand-wide and HQ's only."""
    if data.current_scope().role == "hq":
        return True
    st.info(t("common.hq_only"))
    return False


def legends_below(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Legends under the plot, two entries a row: on a 390 px phone a legend at the side
    takes half the width from the plot. A legend that sets its own `orient` keeps it.

    The chart fits the container's width only ("fit-x"): its `height` stays the plot's
    height and the legend adds to it, instead of squeezing the plot into what is left.
    """
    return chart.properties(
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding")
    ).configure_legend(
        orient="bottom", direction="horizontal", columns=2, labelLimit=160, titleLimit=320
    )


def chart_with_table(
    chart: alt.TopLevelMixin | dict | list[alt.TopLevelMixin], frame: pd.DataFrame, key: str
) -> None:
    """Every chart has a table view of exactly what it draws (`chart` may be a built spec).

    Charts fill the container's width and put their legends below (see `legends_below`).
    A list of charts is drawn two a row, each filling its column: small multiples that
    fit a phone, where a facet's fixed-width panels would not.
    """
    chart_tab, table_tab = st.tabs([t("common.chart"), t("common.table")])
    with chart_tab:
        if isinstance(chart, dict):
            st.vega_lite_chart(chart, width="stretch", key=f"chart_{key}")
        elif isinstance(chart, list):
            # two a row on a desktop; Streamlit stacks columns on a phone
            for start in range(0, len(chart), 2):
                for col, (i, panel) in zip(
                    st.columns(2), list(enumerate(chart))[start : start + 2], strict=False
                ):
                    col.altair_chart(legends_below(panel), width="stretch", key=f"chart_{key}_{i}")
        else:
            st.altair_chart(legends_below(chart), width="stretch", key=f"chart_{key}")
    with table_tab:
        st.dataframe(frame, hide_index=True, width="stretch", key=f"table_{key}")


# column -> label key: one place names the columns every page shows
COLUMN_LABELS = {
    "entity_id": "channel.entity",
    "tag_label": "channel.tag",
    "score": "channel.score",
    "reason": "channel.reason",
    "region": "common.region",
    "sku_code": "common.sku",
    "sku_name": "common.sku_name",
    "category": "common.category",
    "units": "common.units",
    "store_code": "common.store",
    "distributor_code": "common.distributor",
    "as_of": "forecast.as_of",
    "suggested_qty": "forecast.suggested_qty",
    "rule_label": "forecast.rule",
    "order_up_to": "forecast.order_up_to",
    "on_hand": "forecast.on_hand",
    "on_order": "forecast.on_order",
    "order_multiple": "forecast.order_multiple",
}


# st.dataframe's header and row height in pixels (default theme), to size short tables
ROW_PX = 35


def table_height(rows: int, height: int | None) -> int | str:
    """`height` px at most, but no taller than `rows` need: empty grid lines below a short
    table push the rest of the page down a phone screen for nothing."""
    if height is None:
        return "auto"
    return min(height, ROW_PX * (rows + 1) + 3)


def table(frame: pd.DataFrame, height: int | None = None) -> None:
    """A data table with the catalogue's column labels; wide tables scroll inside their frame."""
    labels = {c: t(k) for c, k in COLUMN_LABELS.items() if c in frame.columns}
    st.dataframe(
        frame.rename(columns=labels),
        hide_index=True,
        width="stretch",
        height=table_height(len(frame), height),
    )


def data_table(
    frame: pd.DataFrame,
    height: int,
    key: str,
    formats: Mapping[str, str] | None = None,
    wide: Iterable[str] = (),
    narrow: Iterable[str] = (),
) -> None:
    """`frame` as shown (its columns already labelled): numbers of the columns in `formats`
    (label -> printf format, e.g. "%.2f") so formatted, text columns in `wide` large (a
    reason), number columns in `narrow` small (a rank: a phone keeps its width for the
    names); at most `height` px, no taller than its rows need (`table_height`)."""
    config: dict = {
        label: st.column_config.NumberColumn(format=f) for label, f in (formats or {}).items()
    }
    config |= {c: st.column_config.TextColumn(width="large") for c in wide if c in frame.columns}
    config |= {
        c: st.column_config.NumberColumn(width="small") for c in narrow if c in frame.columns
    }
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=table_height(len(frame), height),
        column_config=config,
        key=key,
    )


MIME = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def file_buttons(
    stem: str,
    xlsx: Callable[[], bytes],
    csv: Callable[[], bytes],
    key: str,
    label: str | None = None,
    text: str = "",
    icon: str | None = ":material/download:",
) -> None:
    """An XLSX and a CSV download button side by side, files `stem`.xlsx and `stem`.csv
    whose bytes `xlsx()` and `csv()` build when the button is clicked (Streamlit calls them
    outside the page's run: they must not read `st.session_state`). `label` (Markdown)
    stands left of the buttons when given; `text` goes before "XLSX"/"CSV" on them; the
    buttons' keys are `key`_xlsx and `key`_csv."""
    if label is None:
        cells = st.columns(2)
    else:
        left, *cells = st.columns([2, 1, 1], vertical_alignment="center")
        left.markdown(label)
    for cell, suffix, payload in zip(cells, (".xlsx", ".csv"), (xlsx, csv), strict=True):
        cell.download_button(
            f"{text} {suffix[1:].upper()}".strip(),
            payload,
            file_name=f"{stem}{suffix}",
            mime=MIME[suffix],
            key=f"{key}_{suffix[1:]}",
            width="stretch",
            icon=icon,
        )


def hbars(
    frame: pd.DataFrame,
    x: str,
    y: str,
    x_title: str,
    tooltip: list,
    height: int,
    title: str | None = None,
) -> alt.Chart:
    """Horizontal bars of `x` (quantitative) per `y` (nominal), longest on top, labels up
    to 150 px; `height` px, `title` over the chart when given."""
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:Q", title=x_title),
            y=alt.Y(f"{y}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=150)),
            tooltip=tooltip,
        )
    )
    return (
        chart.properties(height=height, title=title) if title else chart.properties(height=height)
    )


def count_bars(frame: pd.DataFrame, label: str, key: str, height: int = 220) -> None:
    """How many rows per label, largest first, as bars with their table."""
    counts = frame.groupby(label, as_index=False).size().rename(columns={"size": "n"})
    chart = hbars(counts, "n", label, t("common.count"), [label, "n"], height)
    chart_with_table(chart, counts, key)


def metric_tiles(
    tiles: list[tuple[str, str, str | None, str | None]],
    width: int = 160,
    delta_color: str = "normal",
) -> None:
    """Bordered KPI tiles (label, value, delta or None, help or None) `width` px wide in a
    row that wraps: two a row on a 390 px phone. Deltas carry no arrow."""
    with st.container(horizontal=True, wrap=True):
        for label, value, delta, help_text in tiles:
            st.metric(
                label,
                value,
                delta=delta,
                delta_color=delta_color,
                delta_arrow="off",
                help=help_text,
                border=True,
                width=width,
            )


def money(value: float | None) -> str:
    """Yuan the way a planner reads them (`fmt` in CNY: ¥, and 万 from 100,000)."""
    return fmt(value, "CNY")


def sidebar_region() -> str | None:
    """HQ's region from the sidebar filters (None: all); every other user's queries are
    already cut to their scope."""
    return filters().region if data.current_scope().role == "hq" else None


def fmt(value: float | None, unit: str) -> str:
    """A KPI value in its unit, the way a planner reads it."""
    if value is None or pd.isna(value):
        return "–"
    if unit == "share":
        return f"{value * 100:.1f}%"
    if unit == "share points":
        return f"{value * 100:+.2f} pt"
    if unit == "CNY":
        return f"¥{value / 1e4:,.1f}{t('unit.wan')}" if abs(value) >= 1e5 else f"¥{value:,.0f}"
    if unit == "days":
        return f"{value:.1f} {t('unit.days')}"
    if unit == "consumers":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def fmt_delta(change: float | None, unit: str) -> str | None:
    if change is None or pd.isna(change):
        return None
    if unit in ("share", "share points"):
        return f"{change * 100:+.1f} pt"
    return f"{change:+,.2f}" if abs(change) < 100 else f"{change:+,.0f}"


@st.cache_data(show_spinner=False, max_entries=64)
def province_map(
    by_province: pd.DataFrame,
    value: str,
    title: str,
    points: pd.DataFrame | None = None,
    point_color: str | None = None,
) -> dict:
    """Province choropleth from the shipped outlines, with optional store points on top.

    `by_province` has `province` and `value`; `points` has `lon`, `lat` and tooltips.
    Nothing is fetched: geometry and data are inline in the spec. Building the spec
    serialises the outlines (about half a second), so it is cached per input.
    """
    outlines = alt.Data(values=provinces()["features"])
    land = (
        alt.Chart(outlines)
        .mark_geoshape(fill="#eeeeee", stroke="white", strokeWidth=0.6)
        .encode(tooltip=[alt.Tooltip("properties.name:N", title=t("common.province"))])
    )
    base = (
        alt.Chart(outlines)
        .mark_geoshape(stroke="white", strokeWidth=0.6)
        .transform_lookup(
            lookup="properties.name",
            from_=alt.LookupData(by_province, "province", [value]),
        )
        .encode(
            color=alt.Color(
                f"{value}:Q",
                title=title,
                scale=alt.Scale(scheme="blues"),
                legend=alt.Legend(orient="bottom-left", format=",.0f"),
            ),
            tooltip=[
                alt.Tooltip("properties.name:N", title=t("common.province")),
                alt.Tooltip(f"{value}:Q", title=title, format=",.0f"),
            ],
        )
    )
    layers: list[alt.Chart] = [land, base]
    if points is not None and not points.empty:
        layers.append(
            alt.Chart(points)
            .mark_circle(size=18, opacity=0.75)
            .encode(
                longitude="lon:Q",
                latitude="lat:Q",
                color=alt.Color(
                    f"{point_color}:N",
                    title=None,
                    scale=alt.Scale(scheme="set1"),
                    legend=alt.Legend(orient="bottom-right"),
                )
                if point_color
                else alt.value("#d62728"),
                tooltip=[c for c in points.columns if c not in ("lon", "lat")],
            )
        )
    # no fixed scale: the projection fits the outlines to the chart's width, phone or desktop
    return (
        alt.layer(*layers)
        .project(type="mercator")
        .properties(height=460)
        .resolve_scale(color="independent")
        .to_dict()
    )


def pick_alert(
    shown: pd.DataFrame, label: str, format_func: Callable[[str], str], key: str
) -> pd.Series | None:
    """The alert a reviewer picks from the filtered queue `shown` (one row per alert_id),
    as a row that keeps its `alert_id`; None when the queue is empty."""
    alert_id = st.selectbox(label, shown.alert_id.tolist(), format_func=format_func, key=key)
    if alert_id is None:
        return None
    alert = shown.set_index("alert_id").loc[alert_id].copy()
    alert["alert_id"] = alert_id
    return alert


def pick_code(names: pd.Series, label: str, key: str) -> str | None:
    """A code picked from `names` (code -> name, a missing name shown as the code alone),
    without a picker when there is only one; None when there is none."""
    options = {
        code: f"{code} {name if isinstance(name, str) else ''}".strip()
        for code, name in names.items()
    }
    if len(options) <= 1:
        return next(iter(options), None)
    return st.selectbox(label, list(options), format_func=options.get, key=key)
