"""Shared fixtures: one simulated `tiny` world run through the whole pipeline per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bclake.core.settings import Settings

TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data root with the tiny world simulated and the pipeline materialised once."""
    from dagster import DagsterInstance

    from bclake.orchestration.run import run_pipeline
    from bclake.simulator.run import simulate

    home = tmp_path_factory.mktemp("bclake_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCLAKE_HOME", str(home))
        simulate(home, scale="tiny", seed=TINY_SEED, progress=False)
        with DagsterInstance.ephemeral() as instance:
            result = run_pipeline(str(home), instance)
        assert result.success, "the pipeline failed on the tiny world"
        yield home


@pytest.fixture(scope="session")
def tiny_settings(tiny_home: Path) -> Settings:
    return Settings.from_env(tiny_home)


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    return tmp_path


def pytest_configure() -> None:
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    # tests write landing files and ingest them at once: no settling wait
    os.environ.setdefault("BCLAKE_LANDING_SETTLE_SECONDS", "0")
