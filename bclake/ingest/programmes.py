"""The brand's incentive programmes into the lake, validated, for the warehouse to apply.

`publish_programmes` reads the programme file (`Settings.incentives_file`),
validates it (`bclake.core.incentives.load_programmes`, which names the field at
fault) and replaces `lake/config/incentive_programmes.parquet` and
`lake/config/incentive_tiers.parquet`. Replacing, not appending: a programme
removed from the file stops earning at the next build.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from bclake.core.incentives import Programmes, load_programmes, programme_frames
from bclake.core.settings import Settings

CONFIG_TABLES = ("incentive_programmes", "incentive_tiers")


def config_path(settings: Settings, table: str) -> Path:
    """`lake/config/<table>.parquet`."""
    return settings.lake / "config" / f"{table}.parquet"


def _replace(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def publish_programmes(settings: Settings, path: Path | None = None) -> Programmes:
    """Validate the programme file and write its two lake tables; returns the programmes.

    Raises `ProgrammeError` (file, programme and field named) and writes nothing
    when the file is invalid, so the last valid programmes stay in force.
    """
    programmes = load_programmes(path or settings.incentives_file)
    rows, tiers = programme_frames(programmes)
    _replace(rows, config_path(settings, "incentive_programmes"))
    _replace(tiers, config_path(settings, "incentive_tiers"))
    return programmes
