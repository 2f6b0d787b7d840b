"""Great Expectations suites for the bronze (lake) tables, generated from the contracts.

Ingest already quarantines rows that break a contract; these suites audit what
actually sits in the lake, so a part written by another tool, a contract edited after
the fact or a bug in ingest is caught before the warehouse builds on it. The blocking
check judges the rows loaded by the run that checks (`rows_loaded_since`): a bad part
stops the run that wrote it and is reported there, but an old part cannot stop every
later run. GX 1.x validates pandas frames, so the check hands it one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import polars as pl

from bclake.core.contracts import Contract

LINEAGE = ("_source_file", "_source_row", "_file_sha256", "_ingested_at")
SAMPLE_ROWS = 100_000


@dataclass
class SuiteResult:
    success: bool
    rows_checked: int
    failures: list[dict]  # expectation, column, unexpected_count


def rows_loaded_since(table_dir: Path, since: datetime, limit: int = SAMPLE_ROWS) -> pl.DataFrame:
    """Rows of a lake table ingested at or after `since` (UTC), up to `limit` rows.

    Only parts written since then can hold such rows (a part is written once, with its
    rows' `_ingested_at`), so older parts are not opened. Empty when nothing was loaded.
    """
    cutoff = since.timestamp() - 1.0  # file times and the clock may differ by rounding
    frames, n = [], 0
    for part in sorted(table_dir.rglob("*.parquet"), key=lambda p: -p.stat().st_mtime):
        if part.stat().st_mtime < cutoff:
            break
        frame = pl.read_parquet(part, hive_partitioning=False).filter(
            pl.col("_ingested_at") >= since
        )
        if frame.height:
            frames.append(frame)
            n += frame.height
        if n >= limit:
            break
    return pl.concat(frames, how="diagonal_relaxed").head(limit) if frames else pl.DataFrame()


def _suite(contract: Contract, columns: set[str]):
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=f"bronze_{contract.system}__{contract.table}")
    e = gx.expectations
    for col in LINEAGE:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    for col in contract.all_columns:
        if col.name not in columns:
            continue
        if not col.nullable:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col.name))
        if col.pattern:
            suite.add_expectation(
                e.ExpectColumnValuesToMatchRegex(column=col.name, regex=f"^(?:{col.pattern})$")
            )
        if col.allowed is not None and col.type == "string":
            suite.add_expectation(
                e.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.allowed))
            )
        if col.min is not None or col.max is not None:
            suite.add_expectation(
                e.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.min, max_value=col.max
                )
            )
    if contract.event_date and contract.event_date in columns:
        first, last = contract.plausible_window(date.today())
        suite.add_expectation(
            e.ExpectColumnValuesToBeBetween(
                column=contract.event_date,
                min_value=pd.Timestamp(first),
                max_value=pd.Timestamp(last),
            )
        )
    return suite


def validate_bronze(frame: pl.DataFrame, contract: Contract) -> SuiteResult:
    """Run the contract's bronze suite over a lake frame."""
    if frame.is_empty():
        return SuiteResult(True, 0, [])
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home
    import great_expectations as gx

    pdf = frame.drop("_extra", strict=False).to_pandas()
    for name, dtype in frame.schema.items():
        if dtype == pl.Date and name in pdf:
            pdf[name] = pd.to_datetime(pdf[name])
    context = gx.get_context(mode="ephemeral")
    batch_def = (
        context.data_sources.add_pandas("bronze")
        .add_dataframe_asset(contract.key)
        .add_batch_definition_whole_dataframe("recent")
    )
    result = batch_def.get_batch(batch_parameters={"dataframe": pdf}).validate(
        _suite(contract, set(pdf.columns))
    )
    failures = [
        {
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column"),
            "unexpected_count": r.result.get("unexpected_count"),
        }
        for r in result.results
        if not r.success
    ]
    return SuiteResult(bool(result.success), len(pdf), failures)
