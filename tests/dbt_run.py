"""Running dbt from tests on a copy of a data root, never on the project's own target."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bclake.core.settings import DBT_PROJECT_DIR, Settings


def copy_home(source: Path, target: Path) -> Settings:
    """A copy of the data root `source` (without Dagster's run storage) at `target`."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("dagster"))
    return Settings.from_env(target)


def dbt_command(tmp_path: Path, *args: str) -> list[str]:
    """The dbt command line, with target and log folders under `tmp_path`."""
    return [
        str(Path(sys.executable).with_name("dbt")),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(tmp_path / "dbt_target"),
        "--log-path",
        str(tmp_path / "dbt_logs"),
    ]


def dbt(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """dbt with its own target and log folders, so tests never touch the project's manifest."""
    return subprocess.run(
        dbt_command(tmp_path, *args),
        env={**os.environ, **settings.dbt_env()},
        capture_output=True,
        text=True,
        timeout=600,
    )
