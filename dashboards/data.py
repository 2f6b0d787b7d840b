"""Data access for the dashboards: read-only queries on the published warehouse.

Every page goes through here. Results are cached per published version (the
file's modification time), so a new publish is picked up on the next rerun and
a job writing its build file never blocks a reader.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from bclake.settings import Settings


def published_path() -> Path:
    return Settings.from_env().published_db


def published_version() -> float | None:
    """Modification time of the published warehouse, or None when nothing is published yet."""
    path = published_path()
    return path.stat().st_mtime if path.exists() else None


@st.cache_data(show_spinner=False, max_entries=256)
def _query(sql: str, params: tuple, path: str, version: float) -> pd.DataFrame:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


def query(sql: str, params: tuple = ()) -> pd.DataFrame:
    """Run a read-only query on the published warehouse (empty frame if unpublished)."""
    version = published_version()
    if version is None:
        return pd.DataFrame()
    return _query(sql, params, str(published_path()), version)
