"""bclake's functions inside the warehouse's DuckDB connections (a dbt-duckdb plugin).

dbt's profile lists this module under `plugins:`; dbt-duckdb then calls
`Plugin.configure_connection` on every connection it opens, so models can call:

- `bclake_code_signature_ok(code VARCHAR) -> BOOLEAN`: the keyed check of a
  printed product code (`bclake.core.codes.signature_ok`). The key comes from
  `BCLAKE_CODE_KEY` in the process environment and never appears in SQL,
  compiled models or logs.

When `BCLAKE_STORE` names a remote store (`bclake.core.storage`), its file system is
registered on the connection too, so models read a lake published there
(`BCLAKE_LAKE=s3://...`) without DuckDB's downloadable S3 extension.
"""

from __future__ import annotations

import os

import polars as pl
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.sqltypes import BOOLEAN, VARCHAR

from bclake.core.codes import signature_ok
from bclake.core.storage import Store, register_store


def _signature_ok(codes: pa.Array | pa.ChunkedArray) -> pa.Array:
    return signature_ok(pl.Series(codes, dtype=pl.String)).to_arrow()


def register(con: DuckDBPyConnection) -> None:
    """Create bclake's functions on `con` (idempotent per connection)."""
    con.create_function(
        "bclake_code_signature_ok",
        _signature_ok,
        [VARCHAR],
        BOOLEAN,
        type="arrow",
        null_handling="special",
    )


class Plugin(BasePlugin):
    """dbt-duckdb plugin: registers bclake's functions on each connection."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)
        uri = os.environ.get("BCLAKE_STORE")
        if uri:
            register_store(conn, Store.from_uri(uri))
