"""Every label the dashboards show, in Chinese (default) and English, from labels.yml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import streamlit as st
import yaml

CATALOGUE_FILE = Path(__file__).with_name("labels.yml")
LANGUAGES = ("zh", "en")


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """key -> {"zh": ..., "en": ...}; the file nests keys by page, joined here with dots."""
    raw = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    flat: dict[str, dict[str, str]] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and set(value) == set(LANGUAGES):
                flat[name] = {lang: str(value[lang]) for lang in LANGUAGES}
            elif isinstance(value, dict):
                walk(name, value)
            else:
                raise ValueError(f"{CATALOGUE_FILE}: '{name}' needs both zh and en")

    walk("", raw)
    return flat


def lang() -> str:
    return st.session_state.get("lang", "zh")


def t(key: str, **values: object) -> str:
    """The label for `key` in the session's language, with `{placeholders}` filled."""
    text = catalogue()[key][lang()]
    return text.format(**values) if values else text


def t_or(key: str, fallback: str) -> str:
    """A label for a data value (a tag, a rule) that may be missing from the catalogue."""
    entry = catalogue().get(key)
    return entry[lang()] if entry else fallback


def reason_column() -> str:
    """The column holding a reason in the UI language: `reason_zh` or `reason_en`."""
    return "reason_zh" if lang() == "zh" else "reason_en"
