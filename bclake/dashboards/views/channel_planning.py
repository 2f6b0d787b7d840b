"""Channel planning (渠道优化): where demand goes unserved (white space) on a map with the
brand's stores, the plan for the next N outlets and who would serve them, the stores and
distributors that cost more than they earn with the action each deserves, and the
contribution per store by city tier.

Every query goes through `dashboards.data` (`data.channel_filter`): HQ sees the brand; a
region its cities, stores and distributors; a distributor its territory's white space
(the cities it would serve and those its stores are in) and its own and its stores'
efficiency; a store gets a message and no data.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.geometry import provinces
from bclake.dashboards.i18n import lang, reason_column, t, t_or
from bclake.exports.planner import mask_other_distributors

TILE_PX = 160  # two tiles a row on a 390 px phone
TOP_CITIES = 20  # the ranking's cities drawn with a ring on the map
UNTAPPED_SCHEME = "orangered"
STORE_COLOR = "#4c78a8"
PLAN_COLOR = "#2ca02c"


def units(value: float | None) -> str:
    """Units a week: one decimal under 10, whole above, "–" for none."""
    if value is None or pd.isna(value):
        return "–"
    return f"{value:,.1f}" if 0 < abs(value) < 10 else f"{value:,.0f}"


def tier_label(tier: object) -> str:
    """A city tier (1-4) as 一线城市/二线城市/... or "Tier 1"; unknown as "–"."""
    if tier is None or pd.isna(tier):
        return "–"
    return t_or(f"cp_tier.{int(tier)}", t("cp.tier", n=int(tier)))


# -- loading -------------------------------------------------------------------------


def _where(region: str | None) -> tuple[str, tuple]:
    return ("where region = ?", (region,)) if region else ("", ())


def load(region: str | None, distributor: str | None) -> dict[str, pd.DataFrame]:
    """The channel tables in scope (HQ cut to `region` when given), sorted for display; a
    `distributor` reads other distributors unnamed (`exports.planner.mask_other_distributors`,
    as in its planner files)."""
    where, params = _where(region)
    tables = {
        "white": data.query(
            f"select * from {data.CHANNEL_WHITE_SPACE} {where} order by rank", params
        ),
        "plan": data.query(f"select * from {data.CHANNEL_PLAN} {where} order by outlet", params),
        "scores": data.query(
            f"select * from {data.CHANNEL_SCORES} {where} order by entity_type, contribution",
            params,
        ),
        "stores": data.query(
            f"select store_code, store_name, province, city, lat, lon from marts.dim_store {where}",
            params,
        ),
        # the window's end is exclusive (the day after the last store order)
        "window": data.query(
            "select min(window_start) as start, max(window_end) - 1 as last_day "
            "from marts.fct_store_economics"
        ),
        # per store: contribution a week over the weeks it was active in the window
        "weekly": data.query(
            f"select store_code as code, contribution_per_week from marts.fct_store_economics "
            f"{where}",
            params,
        ),
    }
    if distributor is None:
        return tables
    return {
        name: mask_other_distributors(pl.from_pandas(frame), distributor).to_pandas()
        if name in ("white", "plan", "scores") and not frame.empty
        else frame
        for name, frame in tables.items()
    }


def plan_upto(plan: pd.DataFrame, n: int) -> pd.DataFrame:
    """The brand's plan for `n` new outlets, the rows in scope: outlets 1..n (the plan
    for n is the first n outlets of the laid-out plan, `ml.channel.coverage_plan`)."""
    return plan[plan.outlet <= n]


# -- headline ------------------------------------------------------------------------


def sku_coverage(role: str, scope_id: str | None, region: str | None) -> tuple[float, float]:
    """The KPI 铺货率 (`distribution_coverage`: the share of store x active SKU pairs
    carried) of the scope's last complete month and the change from the month before
    (NaN when missing): HQ's company or sidebar region, a region's, a distributor's."""
    if role == "hq":
        scope_type, scope_id = ("region", region) if region else ("company", "all")
    else:
        scope_type = role
    rows = data.query(
        "select period_start, value from marts.kpi_values where kpi = 'distribution_coverage' "
        "and grain = 'month' and scope_type = ? and scope_id = ? order by period_start",
        (scope_type, scope_id),
    )
    rows = ui.complete_months(rows, ui.filters().end)
    if rows.empty:
        return float("nan"), float("nan")
    last = float(rows.value.iloc[-1])
    return last, last - float(rows.value.iloc[-2]) if len(rows) > 1 else float("nan")


def headline(
    white: pd.DataFrame,
    planned: pd.DataFrame,
    scores: pd.DataFrame,
    sku: tuple[float, float],
) -> None:
    """City coverage (cities with a store of the cities ranked) now and with the plan,
    the KPI 铺货率 (SKUs carried) with its monthly change, the untapped units a week, the
    inefficient stores and what acting saves."""
    stores = scores[scores.entity_type == "store"]
    flagged = stores[stores.rule.isin(("loss", "peer_laggard"))]
    covered = int((white.stores > 0).sum()) if not white.empty else 0
    cities = len(white)
    new_cities = (
        planned.loc[~planned.adcode.isin(white.adcode[white.stores > 0]), "adcode"].nunique()
        if not planned.empty
        else 0
    )
    coverage = covered / cities if cities else None
    after = (covered + new_cities) / cities if cities else None
    tiles = [
        (
            t("cp.kpi_coverage"),
            ui.fmt(coverage, "share"),
            t("cp.kpi_coverage_after", share=ui.fmt(after, "share")) if new_cities else None,
            t("cp.kpi_coverage_help", covered=covered, cities=cities),
        ),
        (
            t("cp.kpi_sku_coverage"),
            ui.fmt(sku[0], "share"),
            ui.fmt_delta(sku[1], "share"),
            t("cp.kpi_sku_coverage_help"),
        ),
        (
            t("cp.kpi_untapped"),
            units(white.est_untapped_units_week.sum() if not white.empty else None),
            None,
            t("cp.kpi_untapped_help"),
        ),
        (
            t("cp.kpi_outlets"),
            f"{len(planned)}",
            t(
                "cp.kpi_outlets_units",
                units=units(planned.expected_incremental_units_week.sum()),
            )
            if not planned.empty
            else None,
            None,
        ),
        (
            t("cp.kpi_inefficient"),
            f"{len(flagged)} / {len(stores)}",
            t("cp.kpi_saving", yuan=ui.money(flagged.saving.sum())) if len(flagged) else None,
            t("cp.kpi_inefficient_help"),
        ),
    ]
    ui.metric_tiles(tiles, TILE_PX)


# -- the map -------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=32)
def area_map(
    cities: pd.DataFrame,
    stores: pd.DataFrame,
    outlets: pd.DataFrame,
    focus: tuple[str, ...],
    labels: tuple[str, ...],
) -> dict:
    """Province outlines (only `focus`'s provinces when given, so a region's map fills
    the frame), the brand's stores as small dots, the ranked cities as circles coloured
    and sized by untapped units a week (the first `TOP_CITIES` ringed) and the planned
    outlets as triangles. `labels`: the legend and tooltip titles (province, untapped,
    city, rank, stores, confidence, outlet, serving distributor, units, store).
    Built once per input (serialising the outlines takes about half a second)."""
    province, untapped, city, rank, n_stores, confidence, outlet, serving, added, store = labels
    features = [f for f in provinces()["features"] if not focus or f["properties"]["name"] in focus]
    land = (
        alt.Chart(alt.Data(values=features))
        .mark_geoshape(fill="#f0f0f0", stroke="#b0b0b0", strokeWidth=0.6)
        .encode(tooltip=[alt.Tooltip("properties.name:N", title=province)])
    )
    layers: list[alt.Chart] = [land]
    if not stores.empty:
        layers.append(
            alt.Chart(stores)
            .mark_circle(size=10, color=STORE_COLOR, opacity=0.45)
            .encode(
                longitude="lon:Q",
                latitude="lat:Q",
                tooltip=[alt.Tooltip("store_code:N", title=store), "store_name:N"],
            )
        )
    if not cities.empty:
        layers.append(
            alt.Chart(cities)
            .mark_circle(opacity=0.85)
            .encode(
                longitude="lon:Q",
                latitude="lat:Q",
                size=alt.Size(
                    "untapped:Q", scale=alt.Scale(range=[12, 420], zero=True), legend=None
                ),
                color=alt.Color(
                    "untapped:Q",
                    title=untapped,
                    scale=alt.Scale(scheme=UNTAPPED_SCHEME),
                    legend=alt.Legend(orient="bottom", format=",.0f", gradientLength=160),
                ),
                stroke=alt.condition("datum.top", alt.value("#222222"), alt.value("#ffffff")),
                strokeWidth=alt.condition("datum.top", alt.value(1.2), alt.value(0.3)),
                order=alt.Order("untapped:Q"),
                tooltip=[
                    alt.Tooltip("city:N", title=city),
                    alt.Tooltip("rank:Q", title=rank),
                    alt.Tooltip("untapped:Q", title=untapped, format=",.1f"),
                    alt.Tooltip("stores:Q", title=n_stores),
                    alt.Tooltip("confidence:Q", title=confidence, format=".2f"),
                ],
            )
        )
    if not outlets.empty:
        layers.append(
            alt.Chart(outlets)
            .mark_point(shape="triangle-up", filled=True, size=140, color=PLAN_COLOR, opacity=1)
            .encode(
                longitude="lon:Q",
                latitude="lat:Q",
                stroke=alt.value("white"),
                tooltip=[
                    alt.Tooltip("outlet:Q", title=outlet),
                    alt.Tooltip("city:N", title=city),
                    alt.Tooltip("serving_distributor_code:N", title=serving),
                    alt.Tooltip("expected_incremental_units_week:Q", title=added, format=",.1f"),
                ],
            )
        )
    return (
        alt.layer(*layers)
        .project(type="mercator")
        .properties(height=460)
        .resolve_scale(color="independent", size="independent")
        .to_dict()
    )


def map_section(
    white: pd.DataFrame, stores: pd.DataFrame, planned: pd.DataFrame, whole_country: bool
) -> None:
    """The map of white space with the stores and the planned outlets, and its table."""
    st.subheader(t("cp.map"))
    if white.empty:
        st.info(t("cp.no_white_space"))
        return
    cities = white.rename(columns={"est_untapped_units_week": "untapped"})[
        ["city", "province", "rank", "untapped", "stores", "confidence", "lat", "lon"]
    ].assign(top=lambda f: f["rank"] <= TOP_CITIES)
    dots = stores.dropna(subset=["lat", "lon"])[["store_code", "store_name", "lat", "lon"]]
    shown = ["outlet", "city", "serving_distributor_code", "expected_incremental_units_week"]
    outlets = planned.merge(white[["adcode", "lat", "lon"]], on="adcode", how="inner")[
        [*shown, "lat", "lon"]
    ]
    focus = (
        ()
        if whole_country
        else tuple(sorted(set(white.province.dropna()) | set(stores.province.dropna())))
    )
    labels = (
        t("common.province"),
        t("cp.untapped"),
        t("cp.city"),
        t("cp.rank"),
        t("channel.stores"),
        t("cp.confidence"),
        t("cp.outlet"),
        t("cp.serving"),
        t("cp.added"),
        t("common.store"),
    )
    table = cities.drop(columns=["lat", "lon", "top"]).rename(
        columns={
            "city": t("cp.city"),
            "province": t("common.province"),
            "rank": t("cp.rank"),
            "untapped": t("cp.untapped"),
            "stores": t("channel.stores"),
            "confidence": t("cp.confidence"),
        }
    )
    ui.chart_with_table(area_map(cities, dots, outlets, focus, labels), table, "cp_map")
    st.caption(t("cp.map_caption", top=TOP_CITIES))


# -- white space ranking -------------------------------------------------------------


def ranking_section(white: pd.DataFrame) -> None:
    """Every city in scope by rank, with the estimate, the evidence and the reason."""
    st.subheader(t("cp.ranking"))
    if white.empty:
        return
    st.caption(t("cp.ranking_caption"))
    ui.data_table(
        pd.DataFrame(
            {
                t("cp.rank"): white["rank"],
                t("cp.city"): white.city,
                t("common.province"): white.province,
                t("cp.tier_col"): white.tier.map(tier_label),
                t("channel.stores"): white.stores,
                t("cp.untapped"): white.est_untapped_units_week.round(1),
                t("cp.residents"): white.resident_consumers.round(0).astype("Int64"),
                t("cp.confidence"): white.confidence.round(2),
                t("cp.nearest"): white.nearest_distributor_code,
                t("cp.km"): white.km.round(0),
                t("cp.reason"): white[reason_column()],
            }
        ),
        420,
        "cp_ranking",
        {t("cp.untapped"): "%.1f", t("cp.confidence"): "%.2f", t("cp.km"): "%.0f"},
        wide=(t("cp.reason"),),
        narrow=(t("cp.rank"),),
    )


# -- coverage plan -------------------------------------------------------------------


def pick_n(plan: pd.DataFrame) -> int:
    """N from the slider: 1 to the last outlet laid out in scope, opening at the brand's
    configured N (`new_outlets`, config/channel.yaml) when it is in range."""
    laid_out = int(plan.outlet.max())
    # a warehouse built before the plan was laid out has no N: the whole plan then
    configured = int(plan["new_outlets"].iloc[0]) if "new_outlets" in plan else laid_out
    if laid_out <= 1:
        return laid_out
    return st.slider(
        t("cp.n"),
        min_value=1,
        max_value=laid_out,
        value=min(max(configured, 1), laid_out),
        key="cp_n",
        help=t("cp.n_help"),
    )


def plan_section(planned: pd.DataFrame, n: int, scoped: bool) -> None:
    """The outlets of the brand's plan for `n` that fall in scope, best first."""
    st.subheader(t("cp.plan", n=n) if n else t("cp.plan_title"))
    if planned.empty:
        st.caption(t("cp.no_plan_here" if scoped else "cp.no_plan"))
        return
    st.caption(t("cp.plan_caption_scoped" if scoped else "cp.plan_caption", n=n, k=len(planned)))
    ui.data_table(
        pd.DataFrame(
            {
                t("cp.outlet"): planned.outlet,
                t("cp.city"): planned.city,
                t("common.province"): planned.province,
                t("cp.tier_col"): planned.tier.map(tier_label),
                t("cp.serving"): planned.serving_distributor_code,
                t("cp.km"): planned.km.round(0),
                t("cp.added"): planned.expected_incremental_units_week.round(1),
                t("cp.left"): planned.untapped_left_units_week.round(1),
            }
        ),
        380,
        "cp_plan",
        {t("cp.added"): "%.1f", t("cp.left"): "%.1f", t("cp.km"): "%.0f"},
        narrow=(t("cp.outlet"),),
    )


# -- inefficient stores and distributors ---------------------------------------------


def inefficient_section(scores: pd.DataFrame) -> None:
    """The flagged stores and distributors: the action each deserves, what it saves over
    the window, the numbers behind it and the reason; by action as bars."""
    st.subheader(t("cp.inefficient"))
    flagged = scores[scores.flagged.astype(bool)]
    if flagged.empty:
        st.caption(t("cp.no_inefficient"))
        return
    st.caption(t("cp.inefficient_caption"))
    kinds = [k for k in ("store", "distributor") if (flagged.entity_type == k).any()]
    kind = (
        st.segmented_control(
            t("cp.entity"),
            kinds,
            default=kinds[0],
            format_func=lambda k: t(f"common.{k}"),
            key=f"cp_kind_{lang()}",
        )
        or kinds[0]
    )
    rows = flagged[flagged.entity_type == kind].sort_values("saving", ascending=False)
    action = rows.action.map(lambda a: t_or(f"cp_action.{a}", str(a)))
    by_action = (
        rows.assign(action_label=action)
        .groupby("action_label", as_index=False)
        .agg(n=("code", "size"), saving=("saving", "sum"))
    )
    chart = (
        alt.Chart(by_action)
        .mark_bar()
        .encode(
            x=alt.X("n:Q", title=t("common.count"), axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("action_label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=150)),
            tooltip=[
                alt.Tooltip("action_label:N", title=t("cp.action")),
                alt.Tooltip("n:Q", title=t("common.count")),
                alt.Tooltip("saving:Q", title=t("cp.saving"), format=",.0f"),
            ],
        )
        .properties(height=40 + 32 * len(by_action))
    )
    ui.chart_with_table(
        chart,
        by_action.rename(
            columns={
                "action_label": t("cp.action"),
                "n": t("common.count"),
                "saving": t("cp.saving"),
            }
        ),
        f"cp_actions_{kind}",
    )
    ui.data_table(
        pd.DataFrame(
            {
                t("cp.code"): rows.code,
                t("cp.name"): rows.name,
                t("cp.city"): rows.city,
                t("cp.action"): action,
                t("cp.saving"): rows.saving.round(0),
                t("cp.contribution"): rows.contribution.round(0),
                t("cp.revenue"): rows.revenue.round(0),
                t("cp.rule"): rows.rule.map(lambda r: t_or(f"cp_rule.{r}", r)),
                t("cp.reason"): rows[reason_column()],
            }
        ),
        420,
        f"cp_inefficient_{kind}",
        {t("cp.saving"): "%.0f", t("cp.contribution"): "%.0f", t("cp.revenue"): "%.0f"},
        wide=(t("cp.reason"),),
    )


# -- contribution per store by tier --------------------------------------------------


def tier_section(scores: pd.DataFrame, weekly: pd.DataFrame) -> None:
    """Contribution per store a week by city tier (the median store, and the mean; each
    store's over the weeks it was active in the window, `contribution_per_week`), and the
    share of stores losing money over the window."""
    st.subheader(t("cp.by_tier"))
    stores = scores[scores.entity_type == "store"].merge(weekly, on="code", how="left")
    if stores.empty:
        st.caption(t("cp.no_stores"))
        return
    per_week = stores.assign(week=stores.contribution_per_week, tier_n=stores.city_tier.fillna(99))
    by_tier = (
        per_week.groupby("tier_n", as_index=False)
        .agg(
            stores=("code", "size"),
            median=("week", "median"),
            mean=("week", "mean"),
            losing=("contribution", lambda c: float((c < 0).mean())),
        )
        .sort_values("tier_n")  # tier 1 on top; an unknown tier last
    )
    by_tier.insert(
        0, "tier", by_tier.pop("tier_n").map(lambda n: tier_label(None if n == 99 else n))
    )
    chart = (
        alt.Chart(by_tier)
        .mark_bar()
        .encode(
            x=alt.X("median:Q", title=t("cp.median_week")),
            y=alt.Y("tier:N", title=None, sort=None),
            color=alt.condition("datum.median < 0", alt.value("#d62728"), alt.value(STORE_COLOR)),
            tooltip=[
                alt.Tooltip("tier:N", title=t("cp.tier_col")),
                alt.Tooltip("stores:Q", title=t("channel.stores")),
                alt.Tooltip("median:Q", title=t("cp.median_week"), format=",.0f"),
                alt.Tooltip("mean:Q", title=t("cp.mean_week"), format=",.0f"),
                alt.Tooltip("losing:Q", title=t("cp.losing"), format=".0%"),
            ],
        )
        .properties(height=40 + 34 * len(by_tier))
    )
    ui.chart_with_table(
        chart,
        by_tier.assign(
            median=by_tier["median"].round(0),
            mean=by_tier["mean"].round(0),
            losing=(by_tier.losing * 100).round(1),
        ).rename(
            columns={
                "tier": t("cp.tier_col"),
                "stores": t("channel.stores"),
                "median": t("cp.median_week"),
                "mean": t("cp.mean_week"),
                "losing": t("cp.losing_pct"),
            }
        ),
        "cp_tiers",
    )


def notes_section() -> None:
    """Stores and distributors whose geography cannot be trusted (HQ's to fix)."""
    notes = data.query(f"select * from {data.CHANNEL_NOTES} order by subject")
    if notes.empty:
        return
    st.subheader(t("cp.notes"))
    ui.data_table(
        pd.DataFrame(
            {
                t("cp.subject"): notes.subject,
                t("cp.issue"): notes.issue,
                t("cp.reason"): notes[reason_column()],
            }
        ),
        320,
        "cp_notes",
        wide=(t("cp.reason"),),
    )


# -- the page ------------------------------------------------------------------------

st.title(t("page.channel_planning"))
ui.require_published()
role = data.current_scope().role
if role == "store":
    st.info(t("cp.roles_only"))
    st.stop()
if not data.has_table(data.CHANNEL_SCORES):
    st.info(t("cp.no_table"))
    st.stop()
region = ui.sidebar_region()
scope = data.current_scope()
tables = load(region, scope.scope_id if role == "distributor" else None)
white, plan, scores = tables["white"], tables["plan"], tables["scores"]
window = tables["window"]
if not window.empty and not pd.isna(window.last_day.iloc[0]):
    st.caption(
        t(
            f"cp.caption_{role}",
            start=f"{pd.Timestamp(window.start.iloc[0]):%Y-%m-%d}",
            end=f"{pd.Timestamp(window.last_day.iloc[0]):%Y-%m-%d}",
        )
    )
n = pick_n(plan) if not plan.empty else 0
planned = plan_upto(plan, n)
headline(white, planned, scores, sku_coverage(role, scope.scope_id, region))
map_section(white, tables["stores"], planned, whole_country=role == "hq" and region is None)
plan_section(planned, n, scoped=role != "hq" or region is not None)
ranking_section(white)
inefficient_section(scores)
tier_section(scores, tables["weekly"])
if role == "hq":
    notes_section()
