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

from bclake.core.progress import track
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

    Returns the publish record (also written beside it as `<published>.json`):
    `published_at` (ISO UTC), `tables` (`schema.name`, views too), `rows` (rows in its
    tables, DuckDB's count) and `bytes` (file size).
    """
    audit = audit or {}
    # steps: checkpoint the build, copy it, drop private schemas, one per audit table,
    # checkpoint the copy, rename it into place
    with track("publish warehouse", total=5 + len(audit), unit="steps") as task:
        con = duckdb.connect(str(build_db))
        con.execute("CHECKPOINT")
        con.close()
        task.advance(note=f"copying {build_db.stat().st_size / 1e6:,.1f} MB")
        tmp = published_db.with_name(f".{published_db.name}.tmp")
        tmp.unlink(missing_ok=True)
        shutil.copyfile(build_db, tmp)
        task.advance(note="copied")
        con = duckdb.connect(str(tmp))
        try:
            for schema in PRIVATE_SCHEMAS:
                con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            con.execute(f"DROP SCHEMA IF EXISTS {AUDIT_SCHEMA} CASCADE")
            task.advance(note="private schemas dropped")
            for name, frame in audit.items():
                write_tables(con, AUDIT_SCHEMA, {name: frame})
                task.advance(note=f"{AUDIT_SCHEMA}.{name}: {frame.height:,} rows")
            tables = con.execute(
                "select table_schema || '.' || table_name from information_schema.tables order by 1"
            ).fetchall()
            rows = con.execute("select coalesce(sum(estimated_size), 0) from duckdb_tables()")
            row_count = int(rows.fetchone()[0])
            con.execute("CHECKPOINT")
            task.advance(note="checkpointed")
        finally:
            con.close()
        info = {
            "published_at": datetime.now(UTC).isoformat(),
            "tables": [t[0] for t in tables],
            "rows": row_count,
            "bytes": tmp.stat().st_size,
        }
        os.replace(tmp, published_db)
        task.advance(note=f"{len(tables)} tables, {info['bytes'] / 1e6:,.1f} MB published")
    published_db.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return info
