"""Downloads: the planner files of the signed-in user's scope, and a verification case
file (XLSX or CSV) for each market-order alert in it; nothing else."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import lang, t, t_or


def case_files() -> None:
    """One alert picked from those in scope, its case file as XLSX and as CSV."""
    st.subheader(t("downloads.case_files"))
    st.caption(t("downloads.case_caption"))
    alerts = (
        data.query(
            "select alert_id, kind, week_start, distributor_code, sku_name, score "
            "from marts.fct_market_order_alerts order by week_start desc, score desc, alert_id"
        )
        if data.has_table("marts.fct_market_order_alerts")
        else pd.DataFrame()
    )
    if alerts.empty:
        st.info(t("downloads.no_cases"))
        return
    # labels made now, in the run's language (a format_func may be called after the run)
    labels = {
        a.alert_id: (
            f"{a.alert_id} · {pd.Timestamp(a.week_start).date()} · "
            f"{t_or(f'mo_kind.{a.kind}', a.kind)} · "
            f"{a.distributor_code if pd.notna(a.distributor_code) else '–'} · {a.sku_name}"
        )
        for a in alerts.itertuples()
    }

    alert_id = st.selectbox(
        t("downloads.case_alert"),
        alerts.alert_id.tolist(),
        format_func=labels.get,
        key=f"dl_case_{lang()}",
    )
    case = data.case_file(alert_id) if alert_id else None
    if case is None:
        return
    ui.file_buttons(
        f"case_{alert_id}", case.xlsx, case.csv, "dl_case", text=t("downloads.button"), icon=None
    )


def planner_files() -> None:
    st.caption(t("downloads.caption"))
    files = data.planner_files()
    if not files:
        st.info(t("downloads.none"))
        return
    folders = sorted({f.folder for f in files}, key=lambda name: (name.count("/"), name))
    folder = st.selectbox(t("downloads.folder"), folders, key="dl_folder")
    for i, file in enumerate(f for f in files if f.folder == folder):
        suffix = file.name[file.name.rfind(".") :]
        left, right = st.columns([3, 1])
        if file.path is None:
            # built in this run, handed over on the click only: no download URL before it
            payload = functools.partial(bytes, data.store_orders_csv())
            left.markdown(f"**{file.name}** · {t('downloads.built')}")
        else:
            payload = file.path.read_bytes  # read on click: company files are large
            left.markdown(f"**{file.name}** · {file.path.stat().st_size / 1024:,.0f} KB")
        right.download_button(
            t("downloads.button"),
            payload,
            file_name=f"{folder.replace('/', '_')}_{file.name}",
            mime=ui.MIME.get(suffix, "application/octet-stream"),
            key=f"dl_{i}_{file.name}",
            width="stretch",
        )


st.title(t("page.downloads"))
ui.require_published()
planner_files()
if data.current_scope().role != "store":
    case_files()
