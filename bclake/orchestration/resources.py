"""Resources: the one place an environment (data root, dbt project) is chosen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from bclake.core.locks import writer_lock
from bclake.core.progress import set_interactive
from bclake.core.settings import Settings


class LakehouseResource(dg.ConfigurableResource):
    """The data root every asset reads and writes (`BCLAKE_HOME`)."""

    home: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:  # noqa: ARG002
        """Progress of long steps (`core.progress`) as log lines, which Dagster's run log
        captures (the `bclake` logger), never as a live display: a run worker's stderr may
        be the terminal `dagster dev` runs in."""
        set_interactive(False)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.home)

    @contextmanager
    def writer(self, purpose: str, log: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the data root's writer lock (`core.locks`) while the block writes; waits for
        another run's writing step to finish, telling `log` whom it waits for."""
        with writer_lock(self.settings.home, purpose, log=log):
            yield

    @contextmanager
    def build_db(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-write connection to the working warehouse (never the published file), under
        the writer lock: DuckDB admits one writing process per file."""
        path = self.settings.build_db
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.writer(f"writing {path.name}"):
            con = duckdb.connect(str(path))
            try:
                yield con
            finally:
                con.close()
