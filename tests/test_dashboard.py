"""The dashboards render with and without a published warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")


def test_overview_without_published_warehouse(empty_home: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("Nothing has been published" in i.value for i in at.info)


def test_overview_with_published_warehouse(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert any("Scan rate" in label for label in labels)
    assert any("WAPE" in label for label in labels)
    region = at.selectbox[0]
    region.select(region.options[-1]).run()
    assert not at.exception
