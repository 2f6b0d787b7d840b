"""Data quality: the ingest ledger, quarantine reasons with examples, asset-check results
and the freshness of every source, as of the published warehouse."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import t


def _audit(table: str, order: str) -> pd.DataFrame:
    """`audit.<table>` in `order`; no rows when the published build predates the table."""
    name = f"audit.{table}"
    return (
        data.query(f"select * from {name} order by {order}")
        if data.has_table(name)
        else pd.DataFrame()
    )


st.title(t("page.quality"))
ui.require_published()
if not ui.hq_only():
    st.stop()
if not data.has_table("audit.ingest_ledger"):
    st.info(t("quality.no_audit"))
    st.stop()

ledger = data.query("select * from audit.ingest_ledger")
if "rows_erased" not in ledger:  # published before erasure was counted
    ledger["rows_erased"] = 0
ledger["rows_erased"] = ledger.rows_erased.fillna(0)
totals = ledger[["rows_in", "rows_loaded", "rows_quarantined", "rows_erased"]].sum()
cols = st.columns(5)
cols[0].metric(t("quality.files"), f"{len(ledger):,}", border=True)
cols[1].metric(t("quality.rows_in"), f"{totals.rows_in:,.0f}", border=True)
cols[2].metric(t("quality.rows_loaded"), f"{totals.rows_loaded:,.0f}", border=True)
cols[3].metric(t("quality.rows_quarantined"), f"{totals.rows_quarantined:,.0f}", border=True)
cols[4].metric(t("quality.rows_erased"), f"{totals.rows_erased:,.0f}", border=True)
balanced = (
    ledger.rows_in == ledger.rows_loaded + ledger.rows_quarantined + ledger.rows_erased
).all()
(st.success if balanced else st.error)(t("quality.balanced" if balanced else "quality.unbalanced"))

st.subheader(t("quality.ledger"))
status = (
    ledger.groupby(["system", "status"], as_index=False).size().rename(columns={"size": "files"})
)
ui.chart_with_table(
    alt.Chart(status)
    .mark_bar()
    .encode(
        x=alt.X("files:Q", title=t("quality.files")),
        y=alt.Y("system:N", title=None),
        color=alt.Color(
            "status:N",
            scale=alt.Scale(
                domain=["loaded", "partial", "rejected", "skipped"],
                range=["#2ca02c", "#ff7f0e", "#d62728", "#7f7f7f"],
            ),
        ),
        tooltip=["system", "status", "files"],
    )
    .properties(height=180),
    status,
    "ledger_status",
)
problems = st.toggle(t("quality.only_problems"), value=True, key="q_problems")
shown = ledger[ledger.status.isin(["partial", "rejected"])] if problems else ledger
st.dataframe(
    shown[
        [
            "file",
            "status",
            "rows_in",
            "rows_loaded",
            "rows_quarantined",
            "rows_erased",
            "reason",
            "message",
            "encoding",
            "extra_columns",
            "first_seen",
        ]
    ],
    hide_index=True,
    width="stretch",
    height=260,
)

st.subheader(t("quality.quarantine"))
reasons = data.query("select * from audit.quarantine_reasons")
if reasons.empty:
    st.success(t("quality.no_quarantine"))
else:
    for row in reasons.itertuples():
        with st.expander(
            f"{row.system}.{row.table} · {row.reason} · {row.rows:,} {t('quality.rows')}"
        ):
            st.code(row.examples, language=None, wrap_lines=True)
            st.caption(t("quality.example_raw"))
            st.code(row.example_raw, language="json", wrap_lines=True)

st.subheader(t("quality.checks"))
checks = _audit("asset_checks", "passed nulls first, asset")
if checks.empty:
    st.info(t("quality.no_checks"))
else:
    c1, c2, c3 = st.columns(3)
    c1.metric(t("quality.checks_passed"), int(checks.passed.fillna(False).sum()), border=True)
    c2.metric(t("quality.checks_failed"), int((checks.passed == False).sum()), border=True)  # noqa: E712
    c3.metric(t("quality.checks_not_run"), int(checks.passed.isna().sum()), border=True)
    failed_only = st.toggle(t("quality.only_failed"), value=False, key="q_failed")
    shown = checks[checks.passed != True] if failed_only else checks  # noqa: E712
    st.dataframe(
        shown[
            ["asset", "check_name", "passed", "severity", "blocking", "description", "evaluated_at"]
        ],
        hide_index=True,
        width="stretch",
        height=300,
    )

st.subheader(t("quality.erasure"))
receipts = _audit("erasure_receipts", "erased_at desc, request_id, place")
if receipts.empty:
    st.info(t("quality.no_erasure"))
else:
    st.caption(t("quality.erasure_caption"))
    layer = receipts.place.str.split(" |/", regex=True).str[0]
    receipts["layer"] = layer.map(
        {"lake": "lake", "quarantine": "lake", "warehouse": "warehouse"}
    ).fillna("files")
    receipts["erased_at"] = pd.to_datetime(receipts.erased_at).dt.tz_convert(data.SHANGHAI)
    summary = (
        receipts.pivot_table(
            index="request_id", columns="layer", values="rows", aggfunc="sum", fill_value=0
        )
        .reindex(columns=["lake", "warehouse", "files"], fill_value=0)
        .join(receipts.groupby("request_id").erased_at.max())
        .sort_values("erased_at", ascending=False)
        .reset_index()
    )
    summary["erased_at"] = summary.erased_at.dt.strftime("%Y-%m-%d %H:%M")
    st.dataframe(
        summary[["request_id", "erased_at", "lake", "warehouse", "files"]].rename(
            columns={
                "request_id": t("quality.request"),
                "erased_at": t("quality.erased_at"),
                "lake": t("quality.erased_lake"),
                "warehouse": t("quality.erased_warehouse"),
                "files": t("quality.erased_files"),
            }
        ),
        hide_index=True,
        width="stretch",
    )
    with st.expander(t("quality.erasure_detail")):
        st.dataframe(
            receipts[["request_id", "place", "rows"]],
            hide_index=True,
            width="stretch",
            height=300,
        )

st.subheader(t("quality.freshness"))
fresh = data.query("select * from audit.source_freshness")
if fresh.empty:
    st.info(t("quality.no_freshness"))
    st.stop()
st.dataframe(
    fresh[
        [
            "system",
            "table",
            "fresh",
            "last_arrival",
            "hours_since",
            "allowed_hours",
            "newest_event_date",
            "message",
        ]
    ],
    hide_index=True,
    width="stretch",
    height=300,
    column_config={"fresh": st.column_config.CheckboxColumn(t("quality.fresh"))},
)
st.caption(t("quality.freshness_caption", at=str(fresh.checked_at.max())[:16]))
