"""Downloads: the planner files of the signed-in user's scope, and nothing else."""

from __future__ import annotations

import streamlit as st

from bclake.dashboards import data, ui
from bclake.dashboards.i18n import t

MIME = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

st.title(t("page.downloads"))
ui.require_published()
st.caption(t("downloads.caption"))
files = data.planner_files()
if not files:
    st.info(t("downloads.none"))
    st.stop()

folders = sorted({f.folder for f in files}, key=lambda name: (name.count("/"), name))
folder = st.selectbox(t("downloads.folder"), folders, key="dl_folder")
for i, file in enumerate(f for f in files if f.folder == folder):
    suffix = file.name[file.name.rfind(".") :]
    left, right = st.columns([3, 1])
    if file.path is None:
        payload = data.store_orders_csv()
        left.markdown(f"**{file.name}** · {t('downloads.built')}")
    else:
        payload = file.path.read_bytes  # read on click: company files are large
        left.markdown(f"**{file.name}** · {file.path.stat().st_size / 1024:,.0f} KB")
    right.download_button(
        t("downloads.button"),
        payload,
        file_name=f"{folder.replace('/', '_')}_{file.name}",
        mime=MIME.get(suffix, "application/octet-stream"),
        key=f"dl_{i}_{file.name}",
        width="stretch",
    )
