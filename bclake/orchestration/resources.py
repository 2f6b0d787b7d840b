"""Resources: the one place an environment (data root, dbt project) is chosen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from bclake.core.settings import Settings


class LakehouseResource(dg.ConfigurableResource):
    """The data root every asset reads and writes (`BCLAKE_HOME`)."""

    home: str

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.home)

    @contextmanager
    def build_db(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-write connection to the working warehouse (never the published file)."""
        path = self.settings.build_db
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        try:
            yield con
        finally:
            con.close()
