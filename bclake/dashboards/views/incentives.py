"""Incentives (激励): the statements of one statement month, their reconciliation with
what the DMS paid, the reward-fraud alerts with their evidence and review form, and what
each programme costs per incremental unit.

Every query goes through the scoped views (`dashboards.data`): HQ sees every payee, a
region its region's, a distributor itself and its stores, a store its own statement lines
only (no reconciliation, no fraud alerts). Review decisions are written as landing files
(`dashboards.review`, the market-order page's form); nothing here writes to the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import altair as alt
import pandas as pd
import polars as pl
import streamlit as st

from bclake.dashboards import data, review, ui
from bclake.dashboards.i18n import lang, reason_column, t, t_or

LINES = "marts.fct_incentive_statement_lines"
RECONCILIATION_STATUSES = (
    "matched",
    "over_paid",
    "under_paid",
    "not_paid",
    "not_yet_due",
    "unexplained",
)
FRAUD_KINDS = ("scan_farming", "photo_reuse")
AMOUNTS = ("amount_earned", "amount_withheld", "amount_forfeited", "amount_payable")
TILE_PX = 160  # wide enough for "¥1,234.5万"; two fit a 390 px phone
EFFECT_MONTHS = 12  # programme periods ending in the year up to the statement month


def programme_names() -> dict[str, str]:
    """programme_id -> its name in the UI language, from the statement lines in scope."""
    names = data.query(
        f"select programme_id, any_value(programme_zh) as zh, any_value(programme_en) as en "
        f"from {LINES} group by 1"
    )
    return dict(zip(names.programme_id, names[lang()], strict=True)) if not names.empty else {}


def money_table(frame: pd.DataFrame, money: list[str], height: int, key: str) -> None:
    """A table whose `money` columns show yuan to the fen and whose reason column is wide."""
    ui.data_table(frame, height, key, dict.fromkeys(money, "%.2f"), wide=(t("incentives.reason"),))


# -- month and headline --------------------------------------------------------------


def pick_month(region: str | None) -> date | None:
    """The statement month to show: every month with lines in scope, newest first; the
    latest month whose lines are all closed is the default."""
    months = data.query(
        f"select cast(statement_month as date) as month, "
        f"bool_and(period_status = 'closed') as closed "
        f"from {LINES} where (? is null or region = ?) group by 1 order by 1 desc",
        (region, region),
    )
    if months.empty:
        return None
    options = [pd.Timestamp(m).date() for m in months.month]
    closed = dict(zip(options, months.closed, strict=True))
    default = next((i for i, m in enumerate(options) if closed[m]), 0)
    labels = {
        m: f"{m:%Y-%m} · {t('incentives.closed' if closed[m] else 'incentives.accruing')}"
        for m in options
    }
    return st.selectbox(
        t("incentives.month"),
        options,
        index=default,
        format_func=labels.get,
        key=f"inc_month_{lang()}",
    )


def participation(month: date, region: str | None) -> float | None:
    """incentive_participation of the user's scope in `month` (None: not computed there;
    the KPI has company, region and distributor values only)."""
    scope = data.current_scope()
    if scope.role == "hq":
        scope_type, scope_id = ("region", region) if region else ("company", "all")
    else:
        scope_type, scope_id = scope.role, scope.scope_id
    found = data.query(
        "select value from marts.kpi_values where kpi = 'incentive_participation' "
        "and grain = 'month' and scope_type = ? and scope_id = ? and period_start = ?",
        (scope_type, scope_id, month),
    )
    return None if found.empty else float(found.value.iloc[0])


def headline(lines: pd.DataFrame, month: date, region: str | None) -> None:
    """Payable, withheld pending review, forfeited, lines, and the share of stores paid
    (a store: how many programmes pay it). The tiles wrap, two or three a row on a phone,
    instead of stacking one a screen row as columns do."""
    tiles = [
        (t("incentives.payable"), ui.money(lines.amount_payable.sum()), None),
        (t("incentives.withheld"), ui.money(lines.amount_withheld.sum()), None),
        (t("incentives.forfeited"), ui.money(lines.amount_forfeited.sum()), None),
        (t("incentives.lines"), f"{len(lines):,}", None),
    ]
    if data.current_scope().role == "store":
        paying = lines[lines.amount_payable > 0].programme_id.nunique()
        tiles.append((t("incentives.programmes_paid"), f"{paying:,}", None))
    else:
        tiles.append(
            (
                t("incentives.participation"),
                ui.fmt(participation(month, region), "share"),
                t("incentives.participation_help"),
            )
        )
    with st.container(horizontal=True, wrap=True):
        for label, value, help_text in tiles:
            st.metric(label, value, border=True, help=help_text, width=TILE_PX)


# -- statements ----------------------------------------------------------------------


def load_lines(month: date, region: str | None) -> pd.DataFrame:
    return data.query(
        f"select * from {LINES} where statement_month = ? and (? is null or region = ?) "
        "order by payee_type, payee_code, programme_id, period_start",
        (month, region, region),
    )


def period_label(lines: pd.DataFrame) -> pd.Series:
    """ "2025-06" for a month, "2025-04 – 2025-06" for a quarter or a year."""
    start = pd.to_datetime(lines.period_start).dt.strftime("%Y-%m")
    end = pd.to_datetime(lines.period_end).dt.strftime("%Y-%m")
    return start.where(start == end, start + " – " + end)


def lines_table(lines: pd.DataFrame, names: dict[str, str]) -> None:
    """The month's lines: programme, period, payable and the reason (the arithmetic) first,
    where they are in view without scrolling, then the evidence and the other amounts. The
    payee columns only when there is more than one payee (a store's own statement does not
    repeat its name on every line of a phone screen)."""
    amounts = [t(f"incentives.{c}") for c in AMOUNTS]
    payable = amounts.pop()
    payees = (
        {t("incentives.payee_code"): lines.payee_code, t("incentives.payee"): lines.payee_name}
        if lines.payee_code.nunique() > 1
        else {}
    )
    frame = pd.DataFrame(
        {
            **payees,
            t("incentives.programme"): lines.programme_id.map(lambda p: names.get(p, p)),
            t("incentives.period"): period_label(lines),
            payable: lines.amount_payable,
            t("incentives.reason"): lines[reason_column()],
            t("incentives.events"): lines.events,
            t("incentives.basis"): lines.basis,
            **{label: lines[c] for label, c in zip(amounts, AMOUNTS[:-1], strict=True)},
        }
    )
    money_table(frame, [t("incentives.basis"), payable, *amounts], 420, "inc_lines")


def totals(lines: pd.DataFrame, region: str | None) -> None:
    """HQ: one row per region and the company; a region (or HQ on one region): one row per
    distributor (its own line and its stores') and the region."""
    by_region = data.current_scope().role == "hq" and region is None
    if by_region:
        groups = lines.region.fillna("–")
        total_label = t("incentives.company")
    else:
        names = data.query("select distributor_code, distributor_name from marts.dim_distributor")
        named = dict(zip(names.distributor_code, names.distributor_name, strict=True))
        groups = lines.distributor_code.map(lambda d: f"{d} {named.get(d, '')}".strip())
        total_label = region or str(data.current_scope().scope_id)
    summed = (
        lines.assign(group=groups)
        .groupby("group", as_index=False)
        .agg(n=("line_id", "count"), **{c: (c, "sum") for c in AMOUNTS})
        .sort_values("amount_payable", ascending=False)
    )
    total = pd.DataFrame([{"group": total_label, "n": len(lines), **lines[list(AMOUNTS)].sum()}])
    # payable first: on a phone the columns after the second scroll out of view
    order = ["group", "n", "amount_payable", "amount_withheld", "amount_forfeited", "amount_earned"]
    frame = pd.concat([summed, total], ignore_index=True)[order].rename(
        columns={
            "group": t("common.region" if by_region else "common.distributor"),
            "n": t("incentives.lines"),
            **{c: t(f"incentives.{c}") for c in AMOUNTS},
        }
    )
    st.markdown(f"**{t('incentives.totals')}**")
    money_table(frame, [t(f"incentives.{c}") for c in AMOUNTS], 320, "inc_totals")


def downloads(lines: pd.DataFrame, month: date, region: str | None) -> None:
    """One payee's statement, and (not for a store) every statement in scope, as XLSX and
    CSV, built by `data.incentive_statement` (formula-like text defused)."""
    payees = lines.drop_duplicates("payee_code").set_index("payee_code").payee_name
    st.markdown(f"**{t('incentives.download')}**")
    payee = ui.pick_code(payees, t("incentives.pick_payee"), f"inc_payee_{lang()}")
    stem = f"statement_{month:%Y%m}"
    files = []
    if payee is not None:
        one = data.incentive_statement(month, payee)
        files.append((t("incentives.payee_file", payee=payee), one, f"{stem}_{payee}", "one"))
    if data.current_scope().role != "store":
        every = data.incentive_statement(month, region=region)
        files.append((t("incentives.all_file", n=len(payees)), every, f"{stem}_all", "all"))
    for label, statement, name, key in files:
        ui.file_buttons(name, statement.xlsx, statement.csv, f"inc_{key}", label=label)


def statements(lines: pd.DataFrame, month: date, region: str | None) -> None:
    st.subheader(t("incentives.statements"))
    names = programme_names()
    lines_table(lines, names)
    if data.current_scope().role in ("hq", "region"):
        totals(lines, region)
    downloads(lines, month, region)


# -- reconciliation ------------------------------------------------------------------


def reconciliation_status(status: str) -> str:
    return t_or(f"inc_reconciliation.{status}", status)


def load_reconciliation(region: str | None) -> pd.DataFrame:
    """Every reconciliation row in scope with the statement month it belongs to (its own
    line's, else that of another payee's line of the same programme and period; None when
    no line in scope has them)."""
    return data.query(
        f"""
        with months as (
            select programme_id, period_start, any_value(statement_month) as statement_month
            from {LINES} group by 1, 2
        )
        select r.*, cast(coalesce(l.statement_month, m.statement_month) as date)
            as statement_month
        from marts.fct_incentive_reconciliation as r
        left join {LINES} as l on l.line_id = r.line_id
        left join months as m
            on m.programme_id = r.programme_id and m.period_start = r.period_start
        where (? is null or r.region = ?)
        order by abs(r.difference) desc, r.payee_code, r.programme_id
        """,
        (region, region),
    )


def reconciliation(month: date, region: str | None) -> None:
    """Counts and amounts by status, and the rows that do not match, with their reasons."""
    st.subheader(t("incentives.reconciliation"))
    st.caption(t("incentives.reconciliation_caption"))
    rows = load_reconciliation(region)
    which = st.segmented_control(
        t("incentives.periods"),
        ("month", "all"),
        default="month",
        format_func={
            "month": t("incentives.this_month", month=f"{month:%Y-%m}"),
            "all": t("incentives.all_periods"),
        }.get,
        key=f"inc_rec_periods_{lang()}",
    )
    if which != "all" and not rows.empty:
        rows = rows[pd.to_datetime(rows.statement_month) == pd.Timestamp(month)]
    if rows.empty:
        st.info(t("incentives.no_reconciliation"))
        return
    status_col = t("incentives.status")
    by_status = (
        rows.groupby("status", as_index=False)
        .agg(
            n=("reconciliation_id", "count"),
            amount_payable=("amount_payable", "sum"),
            paid_amount=("paid_amount", "sum"),
            difference=("difference", "sum"),
        )
        .assign(order=lambda f: f.status.map(RECONCILIATION_STATUSES.index))
        .sort_values("order")
    )
    money_cols = [t("incentives.amount_payable"), t("incentives.paid"), t("incentives.difference")]
    money_table(
        pd.DataFrame(
            {
                status_col: by_status.status.map(reconciliation_status),
                t("incentives.count"): by_status.n,
                **dict(
                    zip(
                        money_cols,
                        (by_status.amount_payable, by_status.paid_amount, by_status.difference),
                        strict=True,
                    )
                ),
            }
        ),
        money_cols,
        260,
        "inc_rec_status",
    )
    differences = rows[rows.status != "matched"]
    st.markdown(f"**{t('incentives.differences', n=len(differences))}**")
    if differences.empty:
        st.caption(t("incentives.all_matched"))
        return
    names = programme_names()
    frame = pd.DataFrame(
        {
            status_col: differences.status.map(reconciliation_status),
            t("incentives.payee_code"): differences.payee_code,
            t("incentives.payee"): differences.payee_name,
            t("incentives.programme"): differences.programme_id.map(lambda p: names.get(p, p)),
            t("incentives.period_start"): pd.to_datetime(differences.period_start).dt.date,
            money_cols[0]: differences.amount_payable,
            money_cols[1]: differences.paid_amount,
            money_cols[2]: differences.difference,
            t("incentives.reason"): differences[reason_column()],
            t("incentives.rebate_ids"): differences.rebate_ids,
        }
    )
    money_table(frame, list(money_cols), 360, "inc_rec_differences")
    st.download_button(
        t("incentives.download_differences"),
        lambda: data.safe_csv(differences_file(differences)),
        file_name=f"reconciliation_{'all' if which == 'all' else f'{month:%Y%m}'}.csv",
        mime="text/csv",
        key="inc_rec_csv",
        icon=":material/download:",
    )


def differences_file(differences: pd.DataFrame) -> pl.DataFrame:
    """The differences as the CSV holds them: the model's columns, dates as dates."""
    keep = [
        "reconciliation_id",
        "status",
        "payee_type",
        "payee_code",
        "payee_name",
        "distributor_code",
        "region",
        "programme_id",
        "period_start",
        "statement_month",
        "pay_due_date",
        "amount_earned",
        "amount_withheld",
        "amount_forfeited",
        "amount_payable",
        "paid_amount",
        "difference",
        "payments",
        "rebate_ids",
        "last_paid_date",
        "reason_zh",
        "reason_en",
    ]
    frame = differences[[c for c in keep if c in differences.columns]].copy()
    for c in ("period_start", "statement_month", "pay_due_date", "last_paid_date"):
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c]).dt.date
    return pl.from_pandas(frame)


# -- reward fraud --------------------------------------------------------------------


def fraud_kind(kind: str) -> str:
    return t_or(f"inc_fraud.{kind}", kind)


def fraud_option(alerts: pd.DataFrame) -> Callable[[str], str]:
    """The selectboxes' label of a fraud alert: month · kind · store · reward · score
    (made now, in the run's language)."""
    labels = {
        a.alert_id: (
            f"{pd.Timestamp(a.period_start):%Y-%m} · {fraud_kind(a.kind)} · {a.store_code} · "
            f"{ui.money(a.reward_at_stake)} · {a.score:.2f}"
        )
        for a in alerts.itertuples()
    }
    return lambda alert_id: labels.get(alert_id, alert_id)


def fraud_queue(alerts: pd.DataFrame) -> pd.DataFrame:
    """Kind and status filters, the alerts that pass as a table; returns them."""
    left, right = st.columns(2)
    kinds = left.multiselect(
        t("incentives.fraud_kind"),
        FRAUD_KINDS,
        default=list(FRAUD_KINDS),
        format_func={k: fraud_kind(k) for k in FRAUD_KINDS}.get,
        key=f"inc_fraud_kinds_{lang()}",
    )
    statuses = right.multiselect(
        t("incentives.status"),
        ui.ALERT_STATUSES,
        default=[s for s in ui.ALERT_STATUSES if s != "dismissed"],
        format_func={s: ui.alert_status(s) for s in ui.ALERT_STATUSES}.get,
        key=f"inc_fraud_statuses_{lang()}",
    )
    shown = alerts[alerts.kind.isin(kinds) & alerts.status.isin(statuses)]
    st.caption(t("incentives.fraud_shown", n=len(shown), total=len(alerts)))
    if shown.empty:
        return shown
    frame = pd.DataFrame(
        {
            t("common.month"): pd.to_datetime(shown.period_start).dt.strftime("%Y-%m"),
            t("incentives.fraud_kind"): shown.kind.map(fraud_kind),
            t("common.store"): (shown.store_code + " " + shown.store_name.fillna("")).str.strip(),
            t("incentives.account"): shown.consumer_id.fillna("–"),
            t("incentives.events"): shown.events.astype("Int64"),
            t("incentives.at_stake"): shown.reward_at_stake,
            t("incentives.score"): shown.score.round(2),
            t("incentives.status"): shown.status.map(ui.alert_status),
            t("incentives.reason"): shown[reason_column()],
            "alert_id": shown.alert_id,
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=ui.table_height(len(frame), 360),
        column_config={
            t("incentives.at_stake"): st.column_config.NumberColumn(format="%.2f"),
            t("incentives.score"): st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format="%.2f", width="small"
            ),
            t("incentives.reason"): st.column_config.TextColumn(width="large"),
        },
        key="inc_fraud_queue",
    )
    return shown


def fraud_evidence(shown: pd.DataFrame) -> str | None:
    """The drill-down of one alert: its reason, facts, evidence events and decisions."""
    st.markdown(f"**{t('incentives.fraud_evidence')}**")
    alert = ui.pick_alert(
        shown, t("incentives.pick_alert"), fraud_option(shown), f"inc_fraud_alert_{lang()}"
    )
    if alert is None:
        return None
    alert_id = alert["alert_id"]
    st.markdown(alert[reason_column()])
    facts = [
        (t("incentives.events"), f"{int(alert.events):,}"),
        (t("incentives.at_stake_short"), ui.money(alert.reward_at_stake)),
    ]
    if alert.kind == "scan_farming":
        facts += [
            (t("incentives.days"), f"{int(alert.days):,}"),
            (t("incentives.burst_days"), f"{int(alert.burst_days or 0):,}"),
            (t("incentives.positions"), f"{int(alert.positions):,}"),
        ]
    st.markdown(" · ".join(f"{name} **{value}**" for name, value in facts))
    events = data.query(
        "select event_time, event_id, store_code, product_code, window_scans, photo_hash, "
        "origin_check_id, origin_store_code, withholds "
        "from marts.fct_incentive_fraud_evidence where alert_id = ? order by event_time, event_id",
        (alert_id,),
    )
    if events.empty:
        st.info(t("incentives.no_evidence"))
    else:
        labels = {
            "event_time": t("incentives.event_time"),
            "event_id": t("incentives.event_id"),
            "store_code": t("common.store"),
            "product_code": t("incentives.product_code"),
            "window_scans": t("incentives.window_scans"),
            "photo_hash": t("incentives.photo_hash"),
            "origin_check_id": t("incentives.origin_check"),
            "origin_store_code": t("incentives.origin_store"),
            "withholds": t("incentives.withholds"),
        }
        empty = [c for c in events.columns if events[c].isna().all()]
        st.dataframe(
            events.drop(columns=empty).rename(columns=labels),
            hide_index=True,
            width="stretch",
            height=ui.table_height(len(events), 300),
            key="inc_fraud_events",
        )
    ui.decision_history(alert, "events")
    return alert_id


def fraud_alerts(region: str | None) -> None:
    st.subheader(t("incentives.fraud"))
    st.caption(t("incentives.fraud_caption"))
    alerts = data.query(
        "select * from marts.fct_incentive_fraud_alerts where (? is null or region = ?) "
        "order by period_start desc, score desc, alert_id",
        (region, region),
    )
    if alerts.empty:
        st.info(t("incentives.no_fraud"))
        return
    shown = fraud_queue(alerts)
    if shown.empty:
        return
    picked = fraud_evidence(shown)
    if data.current_scope().role in review.REVIEW_ROLES:
        ui.review_form("inc_review", shown, "events", fraud_option(shown), picked)


# -- programme effect ----------------------------------------------------------------


def programme_effect(month: date) -> None:
    """HQ: cost per incremental unit and ROI by programme, over the programme periods
    that end in the `EFFECT_MONTHS` months up to `month` and have an estimate."""
    st.subheader(t("incentives.effect"))
    start = (pd.Timestamp(month) - pd.DateOffset(months=EFFECT_MONTHS - 1)).date()
    end = (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).date()
    effect = data.query(
        "select programme_id, count(*) as periods, "
        "count(incremental_units) as measured, "
        "sum(case when incremental_units is not null then cost end) as cost, "
        "sum(incremental_units) as incremental_units, "
        "sum(roi * cost) filter (where roi is not null) as value_back "
        "from marts.fct_incentive_programme_effect "
        "where period_end between ? and ? group by 1 order by 1",
        (start, end),
    )
    if effect.empty or not effect.measured.any():
        st.info(t("incentives.no_effect"))
        st.caption(t("incentives.effect_caption"))
        return
    names = programme_names()
    increment = effect.incremental_units.where(effect.incremental_units > 0)
    table = pd.DataFrame(
        {
            "programme": effect.programme_id.map(lambda p: names.get(p, p)),
            "periods": effect.measured.astype(int).astype(str) + " / " + effect.periods.astype(str),
            "cost": effect.cost,
            "incremental_units": effect.incremental_units.round(0),
            "cost_per_unit": (effect.cost / increment).round(2),
            "roi": (effect.value_back / effect.cost).round(2),
        }
    )
    labels = {
        "programme": t("incentives.programme"),
        "periods": t("incentives.periods_measured"),
        "cost": t("incentives.cost"),
        "incremental_units": t("incentives.incremental_units"),
        "cost_per_unit": t("incentives.cost_per_unit"),
        "roi": t("incentives.roi"),
    }
    drawn = table.dropna(subset=["cost_per_unit"])
    chart = (
        alt.Chart(drawn)
        .mark_bar()
        .encode(
            x=alt.X("cost_per_unit:Q", title=labels["cost_per_unit"]),
            y=alt.Y("programme:N", sort="-x", title=None, axis=alt.Axis(labelLimit=180)),
            tooltip=[
                alt.Tooltip("programme:N", title=labels["programme"]),
                alt.Tooltip("cost_per_unit:Q", title=labels["cost_per_unit"], format=",.2f"),
                alt.Tooltip("roi:Q", title=labels["roi"], format=",.2f"),
            ],
        )
        .properties(height=40 * max(len(drawn), 1) + 40)
    )
    ui.chart_with_table(chart, table.rename(columns=labels), "inc_effect")
    st.caption(
        t("incentives.effect_caption")
        + " "
        + t("incentives.effect_window", start=f"{start:%Y-%m}", end=f"{month:%Y-%m}")
    )


# -- the page ------------------------------------------------------------------------

st.title(t("page.incentives"))
ui.require_published()
if not data.has_table(LINES):
    st.info(t("incentives.no_table"))
    st.stop()
role = data.current_scope().role
st.caption(t("incentives.caption_store" if role == "store" else "incentives.caption"))
region = ui.sidebar_region()
month = pick_month(region)
if month is None:
    st.info(t("incentives.none"))
    st.stop()
lines = load_lines(month, region)
headline(lines, month, region)
if lines.empty:
    st.info(t("incentives.none_month"))
else:
    statements(lines, month, region)
if role != "store":
    reconciliation(month, region)
    fraud_alerts(region)
if role == "hq":
    programme_effect(month)
