"""Write-audit-publish for the warehouse file.

Jobs write `build.duckdb`; readers open only `published.duckdb`. Publishing
copies the audited build aside, strips what readers must not depend on, and
renames it over the published file in one atomic step, so a reader sees the
old version or the new one, never a half-written or locked file. A reader
that already holds the old file open keeps reading it (POSIX rename).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from bclake.core.warehouse import write_tables

# schemas that only exist to build the marts (views over the lake)
PRIVATE_SCHEMAS = ("staging",)


AUDIT_SCHEMA = "audit"


def publish(
    build_db: Path, published_db: Path, audit: dict[str, pl.DataFrame] | None = None
) -> dict:
    """Atomically replace `published_db` with a reader-ready copy of `build_db`.

    `audit` tables (the ingest ledger, quarantine reasons, freshness, check results)
    are written into the copy's `audit` schema, so readers get them with the same
    version as the data they describe; the build file itself is not touched.
    """
    con = duckdb.connect(str(build_db))
    con.execute("CHECKPOINT")
    con.close()
    tmp = published_db.with_name(f".{published_db.name}.tmp")
    tmp.unlink(missing_ok=True)
    shutil.copyfile(build_db, tmp)
    con = duckdb.connect(str(tmp))
    try:
        for schema in PRIVATE_SCHEMAS:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.execute(f"DROP SCHEMA IF EXISTS {AUDIT_SCHEMA} CASCADE")
        if audit:
            write_tables(con, AUDIT_SCHEMA, audit)
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ).fetchall()
        con.execute("CHECKPOINT")
    finally:
        con.close()
    info = {
        "published_at": datetime.now(UTC).isoformat(),
        "tables": [t[0] for t in tables],
        "bytes": tmp.stat().st_size,
    }
    os.replace(tmp, published_db)
    published_db.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return info
