"""Supply plan (供应计划): the plan's weeks of production per plant against its capacity,
each regional DC's stock projection with its P10-P90 band, the DCs and SKUs at risk,
the proposed emergency transfers (跨区域调货) and rush runs (紧急生产), and the inputs the
plan could not use.

Every query goes through the scoped helpers of `dashboards.data`: HQ sees the whole plan;
a region sees the production plan and the plants' capacity read-only (production is
planned centrally and is what feeds its DC), and its own DC's projection, allocation and
the moves into or out of it; a distributor or a store gets a message and no data.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import reason_column, t, t_or

TILE_PX = 160  # two tiles a row on a 390 px phone; the English labels need it
HISTORY_WEEKS = 8  # weeks of actual output before the plan, for context
CARDS = 6  # proposals shown as cards, most avoided loss first; the table holds them all
COLORS = {"actual": "#9e9e9e", "planned": "#4c78a8", "bound": "#f58518"}
CAPACITY_COLOR = "#d62728"
BAND_COLOR = "#9ecae1"
SAFETY_COLOR = "#d62728"
STATUS_RANK = {"ok": 0, "below_safety": 1, "stockout_risk": 2}


def units(value: float | None) -> str:
    """A number of units: one decimal under 10, whole above, "–" for none."""
    if value is None or pd.isna(value):
        return "–"
    return f"{value:,.1f}" if 0 < abs(value) < 10 else f"{value:,.0f}"


def day(value: object) -> str:
    """A date as YYYY-MM-DD, "–" for none."""
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def dc_label(code: str, region: object) -> str:
    """A DC as its code and region, e.g. "DC01 华北"."""
    return f"{code} {region}" if isinstance(region, str) and region else str(code)


def status_label(status: str) -> str:
    """A projection status (ok, below_safety, stockout_risk) in the UI language."""
    return t_or(f"sp_status.{status}", status)


# -- KPIs ----------------------------------------------------------------------------


def bound_weeks(production: pd.DataFrame) -> tuple[int, int]:
    """(plant x category weeks where capacity binds, all plant x category weeks planned)."""
    blocks = production.assign(bound=production.binding == "capacity").groupby(
        ["plant_code", "category", "week"]
    )
    per_week = blocks.bound.any()
    return int(per_week.sum()), len(per_week)


def headline(
    role: str,
    horizon: int,
    production: pd.DataFrame,
    projection: pd.DataFrame,
    moves: pd.DataFrame,
) -> None:
    """Planned units, capacity-bound weeks, expected lost units at the DCs in scope, the
    moves proposed and (when there are any) their cost against the loss they avoid. The
    tiles wrap, two a row on a phone."""
    bound, total = bound_weeks(production) if not production.empty else (0, 0)
    transfers = int((moves.kind == "transfer").sum()) if not moves.empty else 0
    rush = int((moves.kind == "rush_run").sum()) if not moves.empty else 0
    cost = float(moves.cost_yuan.sum()) if not moves.empty else 0.0
    avoided = float(moves.avoided_lost_yuan.sum()) if not moves.empty else 0.0
    lost = float(projection.expected_lost_units.sum()) if not projection.empty else 0.0
    planned = float(production.planned_units.sum()) if not production.empty else 0.0
    # a region reads the company's production, but its own DC's stock and moves
    planned_label = t(
        "supply.kpi_planned" if role == "hq" else "supply.kpi_planned_all", weeks=horizon
    )
    tiles = [
        (planned_label, units(planned), None, None),
        (t("supply.kpi_bound"), f"{bound} / {total}", None, t("supply.kpi_bound_of", n=total)),
        (t("supply.kpi_lost"), units(lost), None, None),
        (t("supply.kpi_moves"), f"{transfers} / {rush}", None, None),
    ]
    if not moves.empty:  # no moves, no cost: the four tiles then fit one row at 1280 px
        tiles.append(
            (
                t("supply.kpi_cost"),
                ui.money(cost),
                t("supply.kpi_avoided", yuan=ui.money(avoided)),
                None,
            )
        )
    ui.metric_tiles(tiles, TILE_PX, "normal" if avoided > cost else "off")


# -- capacity and plan ---------------------------------------------------------------


def block_frame(plan: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """One plant x category's weeks, history then plan: week (MM-DD, the x axis), week_start,
    units (actual output or planned), kind (actual | planned | bound), capacity."""
    planned = (
        plan.assign(bound=plan.binding == "capacity")
        .groupby("week_start", as_index=False)
        .agg(
            units=("planned_units", "sum"),
            capacity=("capacity_units", "max"),
            bound=("bound", "any"),
            shadow=("capacity_shadow_yuan", "max"),
            lost=("expected_lost_units", "sum"),
        )
        .assign(kind=lambda f: f.bound.map({True: "bound", False: "planned"}))
    )
    actual = history.rename(columns={"output_units": "units", "capacity_units": "capacity"})[
        ["week_start", "units", "capacity"]
    ].assign(kind="actual", shadow=None, lost=None)
    frame = pd.concat([actual, planned.drop(columns="bound")], ignore_index=True)
    frame["week_start"] = pd.to_datetime(frame.week_start)
    frame["week"] = frame.week_start.dt.strftime("%m-%d")
    frame["kind_label"] = frame.kind.map(lambda k: t(f"supply.kind_{k}"))
    return frame.sort_values("week_start")


def block_chart(frame: pd.DataFrame, title: str) -> alt.LayerChart:
    """Bars of the week's units coloured by kind under a step line of the capacity."""
    x = alt.X(
        "week:O",
        sort=None,
        title=None,
        axis=alt.Axis(labelAngle=-90, labelOverlap="greedy", labelFontSize=10),
    )
    kinds = ["actual", "planned", "bound"]
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("units:Q", title=t("common.units")),
            color=alt.Color(
                "kind_label:N",
                title=None,
                scale=alt.Scale(
                    domain=[t(f"supply.kind_{k}") for k in kinds],
                    range=[COLORS[k] for k in kinds],
                ),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("week_start:T", title=t("common.week"), format="%Y-%m-%d"),
                alt.Tooltip("kind_label:N", title=" "),
                alt.Tooltip("units:Q", title=t("common.units"), format=",.0f"),
                alt.Tooltip("capacity:Q", title=t("supply.capacity_line"), format=",.0f"),
                alt.Tooltip("shadow:Q", title=t("supply.shadow"), format=",.2f"),
            ],
        )
    )
    line = (
        alt.Chart(frame)
        .mark_line(color=CAPACITY_COLOR, strokeWidth=2, interpolate="step")
        .encode(x=x, y="capacity:Q")
    )
    return alt.layer(bars, line).properties(height=200, title=title)


def capacity_section(production: pd.DataFrame, category: str | None) -> None:
    """One chart per plant x category (two a row, stacked on a phone): the last
    `HISTORY_WEEKS` weeks' actual output, then the plan, under the capacity line."""
    st.subheader(t("supply.capacity"))
    if production.empty:
        st.info(t("supply.no_production"))
        return
    st.caption(t("supply.capacity_caption", weeks=HISTORY_WEEKS))
    first = pd.Timestamp(production.week_start.min()).date()
    history = data.supply_capacity_history(first, HISTORY_WEEKS, category)
    charts, tables = [], []
    for (plant, cat), plan in production.groupby(["plant_code", "category"], sort=True):
        name = plan.plant_name.dropna()
        title = f"{name.iloc[0] if not name.empty else plant} · {cat}"
        past = (
            history[(history.plant_code == plant) & (history.category == cat)]
            if not history.empty
            else pd.DataFrame(columns=["week_start", "output_units", "capacity_units"])
        )
        frame = block_frame(plan, past)
        charts.append(block_chart(frame, title))
        tables.append(frame.assign(plant=plant, category=cat))
    table = pd.concat(tables, ignore_index=True)
    shown = pd.DataFrame(
        {
            t("supply.plant"): table.plant,
            t("common.category"): table.category,
            t("common.week"): table.week_start.dt.date,
            " ": table.kind_label,
            t("common.units"): table.units.round(0),
            t("supply.capacity_line"): table.capacity,
            t("supply.shadow"): table.shadow.astype(float).round(2),
            t("supply.kpi_lost"): table.lost.astype(float).round(1),
        }
    )
    ui.chart_with_table(charts, shown, "sp_capacity")


# -- DC stock projection -------------------------------------------------------------


def pairs_by_risk(projection: pd.DataFrame) -> pd.DataFrame:
    """One row per DC x SKU, riskiest first: warehouse_code, region, sku_code, sku_name,
    lost (expected lost units), worst (status rank), margin (lowest P50 stock less
    safety), lowest (lowest P50 stock), first (first week not ok, NaT if none), weeks
    (weeks not ok)."""
    risky = projection.status != "ok"
    return (
        projection.assign(
            rank=projection.status.map(STATUS_RANK).fillna(0),
            margin=projection.stock_p50 - projection.safety_units,
            risky_week=pd.to_datetime(projection.week_start).where(risky),
            risky=risky,
        )
        .groupby(["warehouse_code", "region", "sku_code"], as_index=False, dropna=False)
        .agg(
            sku_name=("sku_name", "first"),
            lost=("expected_lost_units", "sum"),
            worst=("rank", "max"),
            margin=("margin", "min"),
            lowest=("stock_p50", "min"),
            first=("risky_week", "min"),
            weeks=("risky", "sum"),
        )
        .sort_values(["lost", "worst", "margin"], ascending=[False, False, True])
    )


def projection_chart(one: pd.DataFrame) -> alt.LayerChart:
    """The P10-P90 band of closing stock, the P50 line and the safety stock, by week."""
    labels = {
        "band": t("supply.stock_band"),
        "p50": t("supply.stock_p50"),
        "safety": t("supply.safety"),
    }
    color = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(
            domain=list(labels.values()), range=[BAND_COLOR, COLORS["planned"], SAFETY_COLOR]
        ),
    )
    x = alt.X("week_start:T", title=t("common.week"), axis=alt.Axis(format="%m-%d"))
    tooltip = [
        alt.Tooltip("week_start:T", title=t("common.week"), format="%Y-%m-%d"),
        alt.Tooltip("stock_low:Q", title=t("supply.stock_low"), format=",.0f"),
        alt.Tooltip("stock_p50:Q", title=t("supply.stock_p50"), format=",.0f"),
        alt.Tooltip("stock_high:Q", title=t("supply.stock_high"), format=",.0f"),
        alt.Tooltip("safety_units:Q", title=t("supply.safety"), format=",.0f"),
        alt.Tooltip("arrivals_units:Q", title=t("supply.arrivals"), format=",.0f"),
        alt.Tooltip("status_label:N", title=t("supply.status")),
    ]
    band = (
        alt.Chart(one.assign(series=labels["band"]))
        .mark_area(opacity=0.5)
        .encode(x=x, y=alt.Y("stock_low:Q", title=t("common.units")), y2="stock_high:Q")
        .encode(color=color)
    )
    median = (
        alt.Chart(one.assign(series=labels["p50"]))
        .mark_line(point=True, strokeWidth=2)
        .encode(x=x, y="stock_p50:Q", color=color, tooltip=tooltip)
    )
    safety = (
        alt.Chart(one.assign(series=labels["safety"]))
        .mark_line(strokeDash=[5, 4], strokeWidth=1.5)
        .encode(x=x, y="safety_units:Q", color=color)
    )
    return alt.layer(band, safety, median).properties(height=280)


def projection_section(projection: pd.DataFrame) -> None:
    """One DC x SKU's projected stock, picked from every pair in scope, riskiest first."""
    st.subheader(t("supply.projection"))
    if projection.empty:
        st.info(t("supply.no_projection"))
        return
    st.caption(t("supply.projection_caption"))
    pairs = pairs_by_risk(projection)
    labels = {
        f"{r.warehouse_code}|{r.sku_code}": f"{dc_label(r.warehouse_code, r.region)} · "
        f"{r.sku_name if isinstance(r.sku_name, str) else r.sku_code}"
        for r in pairs.itertuples()
    }
    picked = st.selectbox(t("supply.pick"), list(labels), format_func=labels.get, key="sp_pick")
    warehouse, sku = str(picked).split("|", 1)
    one = projection[(projection.warehouse_code == warehouse) & (projection.sku_code == sku)]
    one = one.assign(
        week_start=pd.to_datetime(one.week_start), status_label=one.status.map(status_label)
    )
    table = pd.DataFrame(
        {
            t("common.week"): one.week_start.dt.date,
            t("supply.stock_low"): one.stock_low,
            t("supply.stock_p50"): one.stock_p50,
            t("supply.stock_high"): one.stock_high,
            t("supply.safety"): one.safety_units,
            t("supply.arrivals"): one.arrivals_units,
            t("supply.kpi_lost"): one.expected_lost_units,
            t("supply.status"): one.status_label,
        }
    )
    ui.chart_with_table(projection_chart(one), table, "sp_projection")
    allocation_details(warehouse, sku)


def allocation_details(warehouse: str, sku: str) -> None:
    """What the plan sends the DC of the SKU, week by week, in an expander."""
    rows = data.supply_allocation(warehouse, sku)
    if rows.empty:
        return
    with st.expander(t("supply.allocation")):
        ui.data_table(
            pd.DataFrame(
                {
                    t("supply.made"): pd.to_datetime(rows.week_start).dt.date,
                    t("supply.arrives"): pd.to_datetime(rows.arrival_week_start).dt.date,
                    t("supply.allocated"): rows.allocated_units.astype("Int64"),
                    t("supply.cover"): rows.cover_weeks.round(2),
                    t("supply.short"): rows.short.astype(bool),
                    t("supply.plant"): rows.plant_code,
                    t("supply.reason"): rows[reason_column()],
                }
            ),
            320,
            "sp_allocation",
            wide=(t("supply.reason"),),
        )


def risk_section(projection: pd.DataFrame, horizon: int) -> None:
    """Every DC x SKU with a week below safety stock or at risk of a stock-out, most
    expected lost units first."""
    st.subheader(t("supply.risk"))
    rows = pairs_by_risk(projection) if not projection.empty else pd.DataFrame()
    rows = rows[rows.worst > 0] if not rows.empty else rows
    if rows.empty:
        st.caption(t("supply.no_risk", weeks=horizon))
        return
    st.caption(t("supply.risk_caption", weeks=horizon))
    worst = {rank: status for status, rank in STATUS_RANK.items()}
    # the product and its expected loss first: on a phone the columns after the third
    # scroll away
    ui.data_table(
        pd.DataFrame(
            {
                t("common.sku_name"): rows.sku_name.fillna(rows.sku_code),
                t("supply.kpi_lost"): rows.lost.round(1),
                t("supply.dc"): [
                    dc_label(c, r) for c, r in zip(rows.warehouse_code, rows.region, strict=True)
                ],
                t("supply.status"): rows.worst.map(lambda r: status_label(worst[int(r)])),
                t("supply.first_week"): rows["first"].dt.date,
                t("supply.weeks_at_risk"): rows.weeks.astype("Int64"),
                t("supply.lowest_p50"): rows.lowest.round(0),
                t("common.sku"): rows.sku_code,
            }
        ),
        420,
        "sp_risk",
        {t("supply.kpi_lost"): "%.1f", t("supply.lowest_p50"): "%.0f"},
    )


# -- transfers and rush runs ---------------------------------------------------------


def source_label(row: object) -> str:
    """Where a move comes from: the sending DC, or the plant of a rush run."""
    if getattr(row, "kind", "") == "rush_run" or not isinstance(row.from_warehouse, str):
        return f"{t('supply.plant')} {row.plant_code}"
    return dc_label(row.from_warehouse, getattr(row, "from_region", None))


def move_card(row: object) -> None:
    """One proposal as a bordered card: what, from where to where, the numbers, why."""
    with st.container(border=True):
        name = row.sku_name if isinstance(row.sku_name, str) else row.sku_code
        st.markdown(f"**{t_or(f'sp_kind.{row.kind}', row.kind)} · {name}**")
        route = f"{source_label(row)} → {dc_label(row.to_warehouse, row.to_region)}"
        if isinstance(row.distance_km, float) and not pd.isna(row.distance_km):
            route += " · " + t("supply.km", km=f"{row.distance_km:,.0f}")
        st.text(route)
        st.caption(
            t(
                "supply.move_line",
                units=units(row.units),
                cases=units(row.cases),
                cost=ui.money(row.cost_yuan),
                avoided=ui.money(row.avoided_lost_yuan),
                lost=units(row.avoided_lost_units),
                arrive=day(row.arrive_by),
            )
        )
        # the pipeline's text as it is: no Markdown
        st.text(getattr(row, reason_column()))


def moves_section(moves: pd.DataFrame) -> None:
    """The first `CARDS` proposals as cards, every one in the table below them."""
    st.subheader(t("supply.moves"))
    if moves.empty:
        st.caption(t("supply.no_moves"))
        return
    st.caption(t("supply.moves_caption"))
    rows = list(moves.itertuples())
    for row in rows[:CARDS]:
        move_card(row)
    with st.expander(t("supply.more_moves", n=len(rows)), expanded=False):
        ui.data_table(
            pd.DataFrame(
                {
                    " ": moves.kind.map(lambda k: t_or(f"sp_kind.{k}", k)),
                    t("common.sku_name"): moves.sku_name.fillna(moves.sku_code),
                    t("supply.avoided_yuan"): moves.avoided_lost_yuan.round(0),
                    t("supply.cost"): moves.cost_yuan.round(0),
                    t("supply.from"): [source_label(r) for r in rows],
                    t("supply.to"): [
                        dc_label(c, r)
                        for c, r in zip(moves.to_warehouse, moves.to_region, strict=True)
                    ],
                    t("common.units"): moves.units.astype("Int64"),
                    t("supply.cases"): moves.cases.astype("Int64"),
                    t("supply.distance"): moves.distance_km.round(0),
                    t("supply.avoided_units"): moves.avoided_lost_units.round(1),
                    t("supply.arrive_by"): pd.to_datetime(moves.arrive_by).dt.date,
                    t("supply.reason"): moves[reason_column()],
                }
            ),
            420,
            "sp_moves",
            {t("supply.avoided_yuan"): "%.0f", t("supply.cost"): "%.0f"},
            wide=(t("supply.reason"),),
        )


def notes_section() -> None:
    """The inputs the plan could not use, with what to fix (HQ's)."""
    notes = data.supply_notes()
    if notes.empty:
        return
    st.subheader(t("supply.notes"))
    st.caption(t("supply.notes_caption"))
    ui.data_table(
        pd.DataFrame(
            {t("supply.subject"): notes.subject, t("supply.reason"): notes[reason_column()]}
        ),
        320,
        "sp_notes",
        wide=(t("supply.reason"),),
    )


# -- the page ------------------------------------------------------------------------

st.title(t("page.supply"))
ui.require_published()
if not data.supply_visible():
    st.info(t("supply.roles_only"))
    st.stop()
if not data.has_table(data.SUPPLY_PLAN):
    st.info(t("supply.no_table"))
    st.stop()
role = data.current_scope().role
# HQ narrows the DC sections with the sidebar's region; a region is cut to its DC anyway
region = ui.sidebar_region()
category = ui.filters().category
production = data.supply_production(category)
horizon = int(production.week.max()) if not production.empty else 0  # config/supply.yaml
st.caption(t("supply.caption" if role == "hq" else "supply.caption_region", weeks=horizon))
projection = data.supply_projection(region, category)
moves = data.supply_transfers(region, category)
if not production.empty:
    st.caption(t("supply.as_of", week=day(production.week_start.min())))
headline(role, horizon, production, projection, moves)
capacity_section(production, category)
projection_section(projection)
risk_section(projection, horizon)
moves_section(moves)
if role == "hq":
    notes_section()
