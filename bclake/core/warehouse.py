"""Writing polars frames into a DuckDB warehouse file as tables; erasing rows from it;
swapping values in it (a key rotation)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import duckdb
import polars as pl


def write_tables(
    con: duckdb.DuckDBPyConnection, schema: str, tables: dict[str, pl.DataFrame]
) -> None:
    """Create (or replace) `schema.<name>` from each frame, through Arrow without copies."""
    con.execute(f"create schema if not exists {schema}")
    for name, frame in tables.items():
        con.register("_frame", frame.to_arrow())
        try:
            con.execute(f"create or replace table {schema}.{name} as select * from _frame")
        finally:
            con.unregister("_frame")


def word_pattern(needles: Iterable[str]) -> str:
    """A regular expression matching any of `needles` as a whole word (not inside a longer
    id: `C000000272` does not match `C0000002721`)."""
    words = "|".join(re.escape(n) for n in sorted(needles))
    return rf"(?:^|[^0-9A-Za-z])(?:{words})(?:[^0-9A-Za-z]|$)"


def erase_rows(con: duckdb.DuckDBPyConnection, needles: Collection[str]) -> dict[str, int]:
    """Delete every row of every base table in which a text column holds one of `needles`
    as a word (`word_pattern`; a plain `contains` first, which is ten times cheaper than the
    expression alone); returns rows deleted per `schema.table` (tables that lost none left
    out). Views are left alone: they show what their tables hold."""
    regex = word_pattern(needles)
    words = sorted(needles)
    tables = _text_columns(con)
    deleted: dict[str, int] = {}
    for schema, table, columns in tables:
        held = " or ".join(f'contains("{c}", $n{i})' for c in columns for i in range(len(words)))
        word = " or ".join(f'regexp_matches("{c}", $regex)' for c in columns)
        params = {"regex": regex, **{f"n{i}": n for i, n in enumerate(words)}}
        n = con.execute(
            f'delete from "{schema}"."{table}" where ({held}) and ({word})', params
        ).fetchall()[0][0]
        if n:
            deleted[f"{schema}.{table}"] = int(n)
    return deleted


def _text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """(schema, table, VARCHAR columns) of every base table of the open database."""
    return con.execute(
        "select c.table_schema, c.table_name, list(c.column_name order by c.ordinal_position) "
        "from information_schema.columns c join information_schema.tables t "
        "using (table_catalog, table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.data_type = 'VARCHAR' "
        "and c.table_catalog = current_database() group by all order by 1, 2"
    ).fetchall()


def rekey_values(
    con: duckdb.DuckDBPyConnection,
    pattern: str,
    rewrite: Callable[[str], str],
    *,
    apply: bool = True,
) -> dict[str, int]:
    """Replace, in every text column of every base table, each value matching the regular
    expression `pattern` by `rewrite(value)` (computed once per distinct value, in Python;
    the update is one join per column). Returns values changed per `schema.table` (tables
    with none left out; with `apply=False`, distinct values that would change, nothing
    written: `con` may be read-only). Views are left alone. For a key rotation: `pattern`
    finds where a pseudonym sits, `rewrite` swaps old pseudonyms for new ones."""
    changed: dict[str, int] = {}
    for schema, table, columns in _text_columns(con):
        name = f'"{schema}"."{table}"'
        for column in columns:
            values = con.execute(
                f'select distinct "{column}" from {name} '
                f'where regexp_matches("{column}", $pattern)',
                {"pattern": pattern},
            ).fetchall()
            pairs = [(v, rewrite(v)) for (v,) in values]
            pairs = [(a, b) for a, b in pairs if a != b]
            if not pairs:
                continue
            if not apply:
                changed[f"{schema}.{table}"] = changed.get(f"{schema}.{table}", 0) + len(pairs)
                continue
            frame = pl.DataFrame(pairs, schema={"old": pl.String, "new": pl.String}, orient="row")
            con.register("_rekey", frame.to_arrow())
            try:
                n = con.execute(
                    f'update {name} set "{column}" = m.new from _rekey m '
                    f'where {name}."{column}" = m.old'
                ).fetchall()[0][0]
            finally:
                con.unregister("_rekey")
            changed[f"{schema}.{table}"] = changed.get(f"{schema}.{table}", 0) + int(n)
    return changed


def compact(path: Path) -> None:
    """Rewrite the DuckDB file at `path` into a fresh file and rename it into place, so the
    blocks of deleted or replaced rows (which DuckDB frees but does not overwrite) leave the
    disk copy too. The caller holds the only connection to `path` (none open here)."""
    tmp = path.with_name(f".{path.name}.compact")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as old (read_only)")
        con.execute(f"attach '{tmp}' as new")
        con.execute("copy from database old to new")
        con.execute("detach new")
        con.execute("detach old")
    finally:
        con.close()
    os.replace(tmp, path)
    Path(f"{path}.wal").unlink(missing_ok=True)
