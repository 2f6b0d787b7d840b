"""Precision marketing (精准营销): the next coupon campaigns' plans and their expected ROI
against a random list, the target lists (一人一推), each store's next activities (一店一策),
the uplift learners' Qini curves on held-out campaigns and the campaigns the model could
not learn from.

Every query goes through the scoped views (`dashboards.data`): HQ sees the lists consumer
by consumer (pseudonymous ids); a region, distributor or store sees only the lists'
segments (`data.LIST_SEGMENTS`: the listed consumers whose home store is in its scope,
summed per segment) and the store plans of its stores. Plans, model scores and campaign
quality are brand-wide and consumer-free.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, reason_column, t, t_or
from bclake.exports.planner import HEADERS

PLANS = "ml.marketing_plans"
STORE_PLANS = "marts.fct_store_activity_plans"
EFFECTS = "marts.fct_store_activity_effects"
QUALITY = "marts.fct_campaign_quality"
TILE_PX = 160  # wide enough for "¥1,234.5万"; two fit a 390 px phone
TOP_N = 50  # list rows HQ sees on screen; the download holds the whole list


def learner_label(learner: str) -> str:
    return t_or(f"mk_learner.{learner}", learner)


def activity_label(activity: str) -> str:
    return t_or(f"mk_activity.{activity}", activity)


def downloads(stem: str, sheet: str, frame: pl.DataFrame, key: str) -> None:
    """XLSX (one sheet named `sheet`) and CSV of `frame` (the planner files' columns and
    headers) named `stem`, their bytes built on click, formula-like text defused
    (`data.safe_xlsx`, `data.safe_csv`). `frame` itself is read in the page's run: the
    builders run outside it, where the signed-in user's scope is unknown."""
    ui.file_buttons(
        stem,
        lambda: data.safe_xlsx({sheet: frame}, HEADERS),
        lambda: data.safe_csv(frame),
        key,
    )


# -- campaign plans ------------------------------------------------------------------


def load_plans() -> pd.DataFrame:
    if not data.has_table(PLANS):
        return pd.DataFrame()
    plans = data.query(f"select * from {PLANS} order by plan_id")
    if plans.empty:
        return plans
    names = plans[f"name_{lang()}"].fillna(plans.plan_id)
    return plans.assign(name=names, label=names + " · " + plans.category.astype(str))


def short_labels(plans: pd.DataFrame) -> tuple[str, pd.Series]:
    """The plans' column header and labels in a table: the category alone when every plan
    has the same name (the category is what tells them apart, and a phone then shows the
    ROI beside it), else name and category."""
    if plans.name.nunique() == 1:
        return t("common.category"), plans.category.astype(str)
    return t("marketing.plan"), plans.label


def lift_text(lift: float) -> str:
    """A relative change in whole percent, "±0%" for less than half a percent either way."""
    return "±0%" if round(lift * 100) == 0 else f"{lift * 100:+.0f}%"


def headline(plans: pd.DataFrame) -> None:
    """Budget, expected cost, incremental sales and the ROI against a random list at the
    same spend, over every plan. The tiles wrap, two a row on a phone."""
    cost = float(plans.expected_cost.sum())
    revenue = float(plans.expected_incremental_revenue.sum())
    roi = revenue / cost if cost > 0 else None
    # a random list spending the same: each plan's random ROI weighted by its spend
    random_revenue = float((plans.expected_roi_random.fillna(0) * plans.expected_cost).sum())
    roi_random = random_revenue / cost if cost > 0 else None
    lift = roi / roi_random - 1 if roi is not None and roi_random else None
    tiles = [
        (t("marketing.total_budget"), ui.money(plans.budget_yuan.sum()), None),
        (t("marketing.total_cost"), ui.money(cost), None),
        (t("marketing.total_revenue"), ui.money(revenue), None),
        (
            t("marketing.total_roi", random=ui.fmt(roi_random, "")),
            ui.fmt(roi, ""),
            None if lift is None else f"{lift_text(lift)} {t('marketing.vs_random')}",
        ),
    ]
    with st.container(horizontal=True, wrap=True):
        for label, value, delta in tiles:
            # no gain over random is neither good nor bad news: grey, not a red arrow
            flat = delta is not None and delta.startswith("±")
            st.metric(
                label,
                value,
                delta=delta,
                delta_color="off" if flat else "normal",
                border=True,
                width=TILE_PX,
            )


def plans_section(plans: pd.DataFrame) -> None:
    st.subheader(t("marketing.plans"))
    st.caption(t("marketing.plans_caption"))
    headline(plans)
    header, names = short_labels(plans)
    labels = {
        "plan": header,
        "roi": t("marketing.roi"),
        "roi_random": t("marketing.roi_random"),
        "budget": t("marketing.budget"),
        "cost": t("marketing.expected_cost"),
        "revenue": t("marketing.expected_revenue"),
        "targets": t("marketing.targets"),
        "holdout": t("marketing.holdout"),
        "coupon": t("marketing.coupon_value"),
        "responses": t("marketing.expected_responses"),
    }
    # ROI first, by the plan's name: on a phone the columns after the second scroll away
    frame = pd.DataFrame(
        {
            labels["plan"]: names,
            labels["roi"]: plans.expected_roi.round(2),
            labels["roi_random"]: plans.expected_roi_random.round(2),
            labels["budget"]: plans.budget_yuan,
            labels["cost"]: plans.expected_cost,
            labels["revenue"]: plans.expected_incremental_revenue,
            labels["targets"]: plans.targets.astype("Int64"),
            labels["holdout"]: plans.holdout.astype("Int64"),
            labels["coupon"]: plans.coupon_value,
            labels["responses"]: plans.expected_incremental_responses.round(1),
        }
    )
    drawn = pd.concat(
        [
            pd.DataFrame(
                {"plan": names, "kind": t("marketing.kind_model"), "roi": plans.expected_roi}
            ),
            pd.DataFrame(
                {
                    "plan": names,
                    "kind": t("marketing.kind_random"),
                    "roi": plans.expected_roi_random,
                }
            ),
        ]
    ).dropna()
    chart = (
        alt.Chart(drawn)
        .mark_bar()
        .encode(
            x=alt.X("roi:Q", title=labels["roi"]),
            y=alt.Y("plan:N", title=None, axis=alt.Axis(labelLimit=150)),
            yOffset=alt.YOffset("kind:N", sort=[t("marketing.kind_model")]),
            color=alt.Color(
                "kind:N",
                title=None,
                sort=[t("marketing.kind_model")],
                scale=alt.Scale(range=["#1f77b4", "#bbbbbb"]),
            ),
            tooltip=[
                alt.Tooltip("plan:N", title=labels["plan"]),
                alt.Tooltip("kind:N", title=" "),
                alt.Tooltip("roi:Q", title=labels["roi"], format=",.2f"),
            ],
        )
        .properties(height=44 * max(len(plans), 1) + 30, title=t("marketing.roi_chart"))
    )
    # the table first: it puts each plan's ROI next to the random list's
    table_tab, chart_tab = st.tabs([t("common.table"), t("common.chart")])
    with table_tab:
        ui.data_table(
            frame,
            300,
            "mk_plans",
            {
                labels["roi"]: "%.2f",
                labels["roi_random"]: "%.2f",
                labels["budget"]: "%.0f",
                labels["cost"]: "%.2f",
                labels["revenue"]: "%.2f",
                labels["coupon"]: "%.0f",
            },
        )
    with chart_tab:
        st.altair_chart(ui.legends_below(chart), width="stretch", key="chart_mk_roi")
    start, end = plans.valid_from.min(), plans.valid_to.max()
    if pd.notna(start) and pd.notna(end):
        st.caption(
            t(
                "marketing.valid",
                start=f"{pd.Timestamp(start):%Y-%m-%d}",
                end=f"{pd.Timestamp(end):%Y-%m-%d}",
            )
        )


# -- target lists --------------------------------------------------------------------


def pick_plan(plans: pd.DataFrame) -> str | None:
    labels = dict(zip(plans.plan_id, plans.label, strict=True))
    return st.selectbox(
        t("marketing.pick_plan"),
        list(labels),
        format_func=labels.get,
        key=f"mk_plan_{lang()}",
    )


def arm_label(arm: str) -> str:
    return t_or(f"marketing.arm_{arm}", arm)


def hq_list(plan_id: str, list_size: float) -> None:
    """The top `TOP_N` of the plan's list of `list_size` consumers (`ml.marketing_plans`),
    consumer by consumer, and the whole list as files (pseudonymous ids only)."""
    n_total = int(list_size) if pd.notna(list_size) else 0
    if n_total == 0:
        st.info(t("marketing.no_list"))
        return
    top = data.query(
        f"select rank, consumer_id, arm, expected_uplift, expected_incremental_revenue, "
        f"expected_cost, reason_zh, reason_en from {data.TARGET_LISTS} where plan_id = ? "
        f"order by rank limit {TOP_N}",
        (plan_id,),
    )
    st.caption(t("marketing.lists_caption_hq", n=len(top), total=f"{n_total:,}"))
    labels = {
        "rank": t("marketing.rank"),
        "consumer": t("marketing.consumer"),
        "arm": t("marketing.arm"),
        "uplift": t("marketing.uplift"),
        "revenue": t("marketing.expected_revenue"),
        "cost": t("marketing.expected_cost"),
        "reason": t("marketing.reason"),
    }
    frame = pd.DataFrame(
        {
            labels["rank"]: top["rank"].astype("Int64"),
            labels["consumer"]: top.consumer_id,
            labels["uplift"]: (top.expected_uplift * 100).round(1),
            labels["reason"]: top[reason_column()],
            labels["arm"]: top.arm.map(arm_label),
            labels["revenue"]: top.expected_incremental_revenue,
            labels["cost"]: top.expected_cost,
        }
    )
    ui.data_table(
        frame,
        420,
        "mk_list",
        {labels["uplift"]: "%.1f%%", labels["revenue"]: "%.2f", labels["cost"]: "%.2f"},
        wide=(labels["reason"],),
        narrow=(labels["rank"],),
    )
    st.markdown(f"**{t('marketing.download_list')}**")
    downloads(
        f"target_list_{plan_id}",
        "target_lists",
        data.marketing_file("target_lists", "plan_id = ?", (plan_id,)),
        "mk_list_file",
    )


def segment_label(segment: object) -> str:
    return t("marketing.other") if segment is None or pd.isna(segment) else str(segment)


def segments(plan_id: str) -> None:
    """The plan's list in the scope, one segment dimension at a time (`data.LIST_SEGMENTS`)."""
    st.markdown(f"**{t('marketing.segments')}**")
    # a scoped reader's lists lie in its own region: its region split says nothing
    dimensions = [
        d for d in data.SEGMENT_DIMENSIONS if d != "region" or data.current_scope().role == "hq"
    ]
    dimension = (
        st.segmented_control(
            t("marketing.dimension"),
            dimensions,
            default=dimensions[0],
            format_func=lambda d: t_or(f"mk_dimension.{d}", d),
            key=f"mk_dimension_{lang()}",
        )
        or dimensions[0]
    )
    rows = data.query(
        f"select * from {data.LIST_SEGMENTS} where plan_id = ? and dimension = ? "
        "order by targets desc, segment",
        (plan_id, dimension),
    )
    if rows.empty:
        st.info(t("marketing.no_list"))
        return
    st.caption(
        t(
            "marketing.in_scope",
            listed=f"{int(rows.consumers.sum()):,}",
            targets=f"{int(rows.targets.sum()):,}",
            cost=ui.money(rows.expected_cost.sum()),
            revenue=ui.money(rows.expected_incremental_revenue.sum()),
        )
    )
    labels = {
        "segment": t_or(f"mk_dimension.{dimension}", dimension),
        "targets": t("marketing.targets"),
        "holdout": t("marketing.holdout"),
        "revenue": t("marketing.expected_revenue"),
        "cost": t("marketing.expected_cost"),
        "responses": t("marketing.expected_responses"),
        "reason": t("marketing.top_reason"),
    }
    table = pd.DataFrame(
        {
            labels["segment"]: rows.segment.map(segment_label),
            labels["targets"]: rows.targets.astype("Int64"),
            labels["holdout"]: rows.holdout.astype("Int64"),
            labels["revenue"]: rows.expected_incremental_revenue.round(2),
            labels["cost"]: rows.expected_cost.round(2),
            labels["responses"]: rows.expected_incremental_responses.round(1),
            labels["reason"]: rows[reason_column()],
        }
    )
    drawn = table.rename(
        columns={labels["segment"]: "segment", labels["targets"]: "targets"}
    ).assign(revenue=rows.expected_incremental_revenue.round(0))
    chart = ui.hbars(
        drawn,
        "targets",
        "segment",
        labels["targets"],
        [
            alt.Tooltip("segment:N", title=labels["segment"]),
            alt.Tooltip("targets:Q", title=labels["targets"]),
            alt.Tooltip("revenue:Q", title=labels["revenue"], format=",.0f"),
        ],
        28 * len(drawn) + 40,
    )
    ui.chart_with_table(chart, table, f"mk_segments_{dimension}")


def lists_section(plans: pd.DataFrame) -> None:
    st.subheader(t("marketing.lists"))
    plan_id = pick_plan(plans)
    if plan_id is None:
        return
    if data.current_scope().role == "hq":
        hq_list(plan_id, plans.set_index("plan_id").list_size[plan_id])
    else:
        st.caption(t("marketing.lists_caption_scoped", k=data.MIN_SEGMENT_CONSUMERS))
    if data.has_table(data.LIST_SEGMENTS):
        segments(plan_id)


# -- store plans ---------------------------------------------------------------------


def store_plans_section(region: str | None) -> None:
    """Per store the ranked activities; HQ and regions also see which activities are
    proposed where. A store sees its own plan, without a picker."""
    st.subheader(t("marketing.store_plans"))
    if not data.has_table(STORE_PLANS):
        st.info(t("marketing.no_store_plans"))
        return
    plans = data.query(
        f"select p.*, s.store_name from {STORE_PLANS} as p "
        "left join marts.dim_store as s using (store_code) "
        "where (? is null or p.region_code = ?) order by p.store_code, p.rank",
        (region, region),
    )
    if plans.empty:
        st.info(t("marketing.no_store_plans"))
        return
    st.caption(
        t(
            "marketing.store_plans_caption",
            start=f"{pd.Timestamp(plans.plan_start.min()):%Y-%m-%d}",
            end=f"{pd.Timestamp(plans.plan_end.max()):%Y-%m-%d}",
        )
    )
    role = data.current_scope().role
    if role != "store":
        by_activity(plans)
    names = plans.drop_duplicates("store_code").set_index("store_code").store_name
    store = ui.pick_code(names, t("marketing.pick_store"), f"mk_store_{lang()}")
    store_plan(plans[plans.store_code == store])
    st.markdown(f"**{t('marketing.download_store_plans')}**")
    downloads(
        "store_plans",
        "store_plans",
        data.marketing_file("store_plans", "(? is null or region = ?)", (region, region)),
        "mk_store_file",
    )
    if role != "store":
        effects()


def evidence_text(row: object) -> str | None:
    """The estimate behind an activity in the UI language, from the plan's evidence
    columns (segment, lift, interval, treated and control stores); None without a measured
    lift (a new-product trial)."""
    lift = getattr(row, "evidence_relative_lift", None)
    if lift is None or pd.isna(lift):
        return None
    segment = getattr(row, "evidence_segment", None)
    low, high = getattr(row, "evidence_ci_low", None), getattr(row, "evidence_ci_high", None)
    treated = getattr(row, "evidence_treated_stores", None)
    control = getattr(row, "evidence_control_stores", None)

    def count(value: object) -> str:
        return "–" if value is None or pd.isna(value) else f"{int(value):,}"

    return t(
        "marketing.evidence_line",
        segment=t("marketing.all_stores")
        if segment in (None, "all")
        else t("marketing.stores_like", segment=segment),
        lift=f"{lift:+.1%}",
        low="–" if low is None or pd.isna(low) else f"{low:+.1%}",
        high="–" if high is None or pd.isna(high) else f"{high:+.1%}",
        treated=count(treated),
        control=count(control),
    )


def store_plan(one: pd.DataFrame) -> None:
    """One store's activities, best first: each a bordered card with its expected increment,
    the reason and the evidence (plain text), which read on a phone where a wide table
    would not."""
    for row in one.sort_values("rank").itertuples():
        with st.container(border=True):
            st.markdown(
                f"**{int(row.rank)}. {activity_label(row.activity)}** · "
                + t(
                    "marketing.activity_line",
                    units=f"{row.expected_incremental_units:,.1f}",
                    yuan=ui.money(row.expected_incremental_yuan),
                )
            )
            # the pipeline's text as it is: no Markdown (a URL in it would turn into a link)
            st.text(getattr(row, reason_column()))
            evidence = evidence_text(row)
            if evidence:
                st.caption(evidence)
            elif isinstance(row.evidence, str) and row.evidence:
                st.text(f"{t('marketing.evidence')}: {row.evidence}")


def by_activity(plans: pd.DataFrame) -> None:
    """Stores each activity is proposed to (and first for), with the expected increment."""
    summary = (
        plans.assign(first=plans["rank"] == 1)
        .groupby("activity", as_index=False)
        .agg(
            stores=("store_code", "nunique"),
            first=("first", "sum"),
            yuan=("expected_incremental_yuan", "sum"),
            units=("expected_incremental_units", "sum"),
        )
        .assign(label=lambda f: f.activity.map(activity_label))
        .sort_values("yuan", ascending=False)
    )
    labels = {
        "label": t("marketing.activity"),
        "stores": t("marketing.stores_any"),
        "first": t("marketing.stores_first"),
        "yuan": t("marketing.yuan"),
        "units": t("marketing.units"),
    }
    chart = ui.hbars(
        summary,
        "yuan",
        "label",
        labels["yuan"],
        [
            alt.Tooltip("label:N", title=labels["label"]),
            alt.Tooltip("stores:Q", title=labels["stores"]),
            alt.Tooltip("first:Q", title=labels["first"]),
            alt.Tooltip("yuan:Q", title=labels["yuan"], format=",.0f"),
        ],
        36 * len(summary) + 40,
        title=t("marketing.by_activity"),
    )
    table = summary[["label", "stores", "first", "yuan", "units"]].round({"yuan": 0, "units": 1})
    ui.chart_with_table(chart, table.rename(columns=labels), "mk_by_activity")


def effects() -> None:
    """The pooled lift of each activity over every treated store, with its interval."""
    if not data.has_table(EFFECTS):
        return
    rows = data.query(
        f"select activity, relative_lift, ci_low, ci_high, treated_stores, significant "
        f"from {EFFECTS} where segment = 'all' order by relative_lift desc"
    )
    if rows.empty:
        return
    with st.expander(t("marketing.effects")):
        labels = {
            "activity": t("marketing.activity"),
            "lift": t("marketing.lift"),
            "ci": t("marketing.ci"),
            "stores": t("marketing.treated_stores"),
            "significant": t("marketing.significant"),
        }
        ci = rows.ci_low.map("{:+.1%}".format) + " – " + rows.ci_high.map("{:+.1%}".format)
        ui.data_table(
            pd.DataFrame(
                {
                    labels["activity"]: rows.activity.map(activity_label),
                    labels["lift"]: (rows.relative_lift * 100).round(1),
                    labels["ci"]: ci.where(rows.ci_low.notna(), "–"),
                    labels["stores"]: rows.treated_stores.astype("Int64"),
                    labels["significant"]: rows.significant.astype(bool),
                }
            ),
            240,
            "mk_effects",
            {labels["lift"]: "%+.1f%%"},
        )


# -- the model -----------------------------------------------------------------------


def model_section() -> None:
    """Qini curves of every learner on the held-out campaigns, the scores, and why the
    chosen learner was chosen."""
    st.subheader(t("marketing.model"))
    if not data.has_table("ml.marketing_learner_scores"):
        st.info(t("marketing.no_model"))
        return
    scores = data.query("select * from ml.marketing_learner_scores")
    curves = (
        data.query("select * from ml.marketing_qini_curves")
        if data.has_table("ml.marketing_qini_curves")
        else pd.DataFrame()
    )
    if scores.empty or curves.empty or scores.qini.isna().all():
        st.info(t("marketing.no_model"))
        return
    held = str(scores.heldout_campaigns.iloc[0] or "")
    n_held = len([c for c in held.split(",") if c])
    st.caption(t("marketing.model_caption", n=n_held, campaigns=held.replace(",", ", ")))
    chosen = scores[scores.chosen.astype(bool)]
    chosen_name = str(chosen.learner.iloc[0]) if not chosen.empty else None
    drawn = curves.assign(
        learner_label=curves.learner.map(learner_label),
        chosen=curves.learner == chosen_name,
    )
    labels = {
        "share": t("marketing.share_targeted"),
        "inc": t("marketing.incremental_responses"),
        "learner": t("marketing.learner"),
    }
    lines = (
        alt.Chart(drawn)
        .mark_line()
        .encode(
            x=alt.X("share_targeted:Q", title=labels["share"], axis=alt.Axis(format="%")),
            y=alt.Y("incremental_responses:Q", title=labels["inc"]),
            color=alt.Color("learner_label:N", title=None, scale=alt.Scale(scheme="category10")),
            strokeWidth=alt.condition("datum.chosen", alt.value(3.5), alt.value(1.6)),
            tooltip=[
                alt.Tooltip("learner_label:N", title=labels["learner"]),
                alt.Tooltip("share_targeted:Q", title=labels["share"], format=".0%"),
                alt.Tooltip("incremental_responses:Q", title=labels["inc"], format=",.1f"),
            ],
        )
    )
    reference = drawn[drawn.learner == drawn.learner.iloc[0]]
    random_line = (
        alt.Chart(reference)
        .mark_line(strokeDash=[5, 4], color="#888888")
        .encode(
            x="share_targeted:Q",
            y="random_incremental_responses:Q",
            tooltip=[alt.Tooltip("random_incremental_responses:Q", format=",.1f")],
        )
    )
    table = pd.DataFrame(
        {
            labels["learner"]: scores.learner.map(learner_label),
            t("marketing.qini"): scores.qini.round(4),
            t("marketing.auuc"): scores.auuc.round(4),
            t("marketing.is_chosen"): scores.chosen.astype(bool),
            t("marketing.fit_seconds"): scores.fit_seconds.round(1),
        }
    ).sort_values(t("marketing.qini"), ascending=False)
    ui.chart_with_table(alt.layer(lines, random_line).properties(height=300), table, "mk_qini")
    if chosen_name is not None:
        chosen_qini = float(chosen.qini.iloc[0])
        st.markdown(
            t("marketing.chosen", learner=learner_label(chosen_name), qini=f"{chosen_qini:.4f}")
        )
        response = scores[scores.learner == "response_model"]
        if not response.empty and pd.notna(response.qini.iloc[0]):
            qini = float(response.qini.iloc[0])
            verdict = t(
                "marketing.beats_response" if chosen_qini > qini else "marketing.loses_response"
            )
            st.caption(t("marketing.vs_response", qini=f"{qini:.4f}", verdict=verdict))


def quality_section() -> None:
    """The campaigns left out of learning, with the reason in the user's language."""
    st.subheader(t("marketing.quality"))
    if not data.has_table(QUALITY):
        return
    campaigns = data.query(f"select * from {QUALITY} order by start_date desc, campaign_id")
    if campaigns.empty:
        return
    faulty = campaigns[~campaigns.learnable.astype(bool)]
    total, learnable = len(campaigns), len(campaigns) - len(faulty)
    if faulty.empty:
        st.caption(t("marketing.all_learnable", total=total))
        return
    st.caption(t("marketing.quality_caption", total=total, learnable=learnable))
    ui.data_table(
        pd.DataFrame(
            {
                t("marketing.campaign"): faulty.campaign_id,
                t("marketing.reason"): faulty[reason_column()],
                t("marketing.start"): pd.to_datetime(faulty.start_date).dt.date,
                t("common.category"): faulty.category,
                t("marketing.members"): faulty.members.astype("Int64"),
                t("marketing.treated"): faulty.treated.astype("Int64"),
                t("marketing.holdout"): faulty.holdout.astype("Int64"),
            }
        ),
        320,
        "mk_quality",
        wide=(t("marketing.reason"),),
    )


# -- the page ------------------------------------------------------------------------

st.title(t("page.marketing"))
ui.require_published()
if not data.has_table(PLANS) and not data.has_table(STORE_PLANS):
    st.info(t("marketing.no_table"))
    st.stop()
role = data.current_scope().role
st.caption(t("marketing.caption_store" if role == "store" else "marketing.caption"))
# HQ narrows the store plans with the sidebar's region; others are cut to their scope
region = ui.sidebar_region()
plans = load_plans()
category = ui.filters().category
if category is not None and not plans.empty:  # the sidebar's category: its plans only
    plans = plans[plans.category == category]
if role == "store":
    store_plans_section(region)
if plans.empty:
    st.info(t("marketing.no_plans"))
else:
    plans_section(plans)
    lists_section(plans)
if role != "store":
    store_plans_section(region)
    model_section()
    quality_section()
