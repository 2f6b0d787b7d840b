"""bclake dashboards: the Streamlit entry point (`streamlit run dashboards/app.py`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="bclake", page_icon="📦", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "overview.py", title="总览 Overview", icon="📊", default=True),
    ]
)
navigation.run()
