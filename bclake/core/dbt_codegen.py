"""dbt sources and staging models generated from the data contracts.

The contracts are the one description of every source table; the dbt layer that
mirrors them is rendered from them so that the two can never drift:

- `models/staging/<system>/` per source system: `_<system>__sources.yml` (the lake
  locations and freshness), `_<system>__models.yml` (the key, required and
  allowed-value tests) and one `stg_<system>__<table>.sql` per table, its key
  deduplicated;
- `macros/staging_columns.sql`: `staging_columns(system, table)`, the column list
  of each staging model, which the incremental facts select instead of re-listing it;
- the calendar and KPI-definition seeds.

`bclake contracts --dbt` writes the files; a test fails when they are stale.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from bclake.core.contracts import Contract

HEADER = "generated from contracts/{system}/{table}.yaml by `bclake contracts --dbt`; do not edit"
LINEAGE = ("_source_file", "_ingested_at")
SYSTEM_DESCRIPTIONS = {
    "erp": "Brand ERP exports: products, warehouses, shipments, invoices, payments, plants.",
    "dms": "Distributor management system: distributors, stores, orders, POS, promotions.",
    "cdp": "Customer data platform: consumers (pseudonymised), groups, campaigns, coupons.",
    "code": "One-item-one-code platform: case activations, consumer and store scans.",
    "market": "Third-party market data: competitor prices and market share by province.",
    "review": "Review decisions recorded by bclake's users (market-order alerts).",
}


def staging_name(contract: Contract) -> str:
    return f"stg_{contract.system}__{contract.table}"


def staging_folder(system: str) -> str:
    """The staging folder of one source system, relative to the dbt project."""
    return f"models/staging/{system}"


def render_staging_sql(contract: Contract) -> str:
    """One row per contract key: the version ingested last wins (a re-sent file corrects)."""
    keys = ", ".join(f"'{k}'" for k in contract.primary_key)
    columns = ",\n".join(f"    {c}" for c in [*contract.lake_columns, *LINEAGE])
    description = "".join(f"-- {line}\n" for line in textwrap.wrap(contract.description, 96))
    return (
        f"-- {HEADER.format(system=contract.system, table=contract.table)}\n"
        f"{description}"
        "with deduped as (\n"
        f"    {{{{ dedup(source('{contract.system}', '{contract.table}'), [{keys}]) }}}}\n"
        ")\n\n"
        f"select\n{columns}\nfrom deduped\n"
    )


def _column_tests(contract: Contract) -> list[dict]:
    out = []
    single_key = contract.primary_key[0] if len(contract.primary_key) == 1 else None
    for col in contract.all_columns:
        tests: list = []
        if col.name == single_key:
            tests.append("unique")
        if not col.nullable or col.name in contract.primary_key:
            tests.append("not_null")
        if col.allowed is not None and col.type == "string":
            tests.append({"accepted_values": {"arguments": {"values": list(col.allowed)}}})
        entry: dict = {"name": col.name}
        if col.pii:
            entry["description"] = "Pseudonymised at ingest (HMAC-SHA256 of the source value)."
        if tests:
            entry["data_tests"] = tests
        out.append(entry)
    return out


def render_staging_yml(contracts: list[Contract]) -> str:
    """The staging models of `contracts` with their key, required and allowed-value tests."""
    models = []
    for c in contracts:
        model: dict = {
            "name": staging_name(c),
            "description": f"{c.description} One row per {', '.join(c.primary_key)}; the "
            "row ingested last wins.",
            "columns": _column_tests(c),
        }
        if len(c.primary_key) > 1:
            model["data_tests"] = [
                {"unique_combination": {"arguments": {"columns": list(c.primary_key)}}}
            ]
        models.append(model)
    return _yaml({"version": 2, "models": models})


def render_sources_yml(contracts: list[Contract]) -> str:
    """Sources over the lake's Parquet, absolute paths from BCLAKE_LAKE (set by the settings).

    One dbt source per system among `contracts` (normally the contracts of one system).
    """
    systems: dict[str, list[Contract]] = {}
    for c in contracts:
        systems.setdefault(c.system, []).append(c)
    sources = []
    for system, tables in systems.items():
        location = (
            "read_parquet('{{ env_var('BCLAKE_LAKE', '../data/lake') }}/"
            + system
            + "/{name}/**/*.parquet', union_by_name=true, hive_partitioning=false)"
        )
        sources.append(
            {
                "name": system,
                "description": SYSTEM_DESCRIPTIONS.get(system, f"{system} exports."),
                "config": {
                    "meta": {"external_location": location},
                    "loaded_at_field": "_ingested_at",
                },
                "tables": [
                    {
                        "name": c.table,
                        "description": c.description,
                        "config": {
                            "freshness": (
                                None
                                if c.freshness_hours is None
                                else {"warn_after": {"count": c.freshness_hours, "period": "hour"}}
                            )
                        },
                    }
                    for c in tables
                ],
            }
        )
    return _yaml({"version": 2, "sources": sources})


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


HOLIDAYS_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
CALENDAR_YEARS = (2020, 2026)


def render_calendar_seed() -> str:
    """The Chinese calendar as a seed: holidays on their lunar dates, make-up workdays."""
    from datetime import date

    from bclake.core.calendar import build_calendar

    start, end = date(CALENDAR_YEARS[0], 1, 1), date(CALENDAR_YEARS[1], 12, 31)
    cal = build_calendar(start, (end - start).days + 1)
    lines = ["date_day,holiday,holiday_zh,is_workday,festival"]
    for row in cal.iter_rows(named=True):
        holiday = row["holiday"] or ""
        lines.append(
            f"{row['date']},{holiday},{HOLIDAYS_ZH.get(holiday, holiday)},"
            f"{str(row['workday']).lower()},{row['festival'] or ''}"
        )
    return "\n".join(lines) + "\n"


def render_kpi_seed() -> str:
    """The KPI definitions as a seed, so the warehouse can label and check kpi_values."""
    import csv
    import io

    from bclake.core.kpis import load_kpis

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kpi", "label_zh", "label_en", "side", "unit", "direction", "target"])
    for k in load_kpis().values():
        writer.writerow([k.name, k.zh, k.en, k.side, k.unit, k.direction, k.target or ""])
    return buffer.getvalue()


def _lookup_macro(name: str, doc: list[str], values: dict[str, dict[str, list[str]]]) -> list[str]:
    """One Jinja macro `name(system, table)` returning a list of names from `values`."""
    lines = ["{#-", *(f"  {line}" for line in doc), "-#}"]
    lines += [f"{{% macro {name}(system, table) -%}}", "    {%- set lists = {"]
    for system, tables in values.items():
        lines.append(f"        '{system}': {{")
        for table, names in tables.items():
            lines.append(f"            '{table}': [")
            lines += [f"                '{n}'," for n in names]
            lines.append("            ],")
        lines.append("        },")
    lines += [
        "    } -%}",
        "    {%- if table not in lists.get(system, {}) -%}",
        f"        {{{{ exceptions.raise_compiler_error('{name}: no contract for '"
        " ~ system ~ '.' ~ table) }}",
        "    {%- endif -%}",
        "    {{ return(lists[system][table]) }}",
        "{%- endmacro %}",
    ]
    return lines


def render_columns_macro(contracts: list[Contract]) -> str:
    """`staging_columns(system, table)` and `staging_key(system, table)` as Jinja macros.

    `staging_columns` returns the staging model's column names in contract order
    (header columns, line columns, derived columns; lineage columns excluded),
    `staging_key` the contract's primary key; an unknown table is a compilation error.
    """
    columns: dict[str, dict[str, list[str]]] = {}
    keys: dict[str, dict[str, list[str]]] = {}
    for c in contracts:
        columns.setdefault(c.system, {})[c.table] = c.lake_columns
        keys.setdefault(c.system, {})[c.table] = list(c.primary_key)
    lines = ["{#- " + HEADER.format(system="*", table="*") + " -#}", ""]
    lines += _lookup_macro(
        "staging_columns",
        [
            "The columns of the staging model of source table `system.table`: contract",
            "columns, then derived ones; lineage columns such as _ingested_at excluded.",
            "Models that read a source directly (the incremental facts) select these, so",
            "they carry exactly what the staging model does.",
        ],
        columns,
    )
    lines.append("")
    lines += _lookup_macro(
        "staging_key",
        ["The primary key of source table `system.table` (its contract's primary_key)."],
        keys,
    )
    return "\n".join(lines) + "\n"


def render_all(contracts: list[Contract]) -> dict[str, str]:
    """Relative path under the dbt project -> file text."""
    files = {
        "seeds/cn_calendar.csv": render_calendar_seed(),
        "seeds/kpi_definitions.csv": render_kpi_seed(),
        "macros/staging_columns.sql": render_columns_macro(contracts),
    }
    systems: dict[str, list[Contract]] = {}
    for c in contracts:
        systems.setdefault(c.system, []).append(c)
    for system, tables in systems.items():
        folder = staging_folder(system)
        header = "# " + HEADER.format(system=system, table="*") + "\n"
        files[f"{folder}/_{system}__sources.yml"] = header + render_sources_yml(tables)
        files[f"{folder}/_{system}__models.yml"] = header + render_staging_yml(tables)
        for c in tables:
            files[f"{folder}/{staging_name(c)}.sql"] = render_staging_sql(c)
    return files


def write_all(contracts: list[Contract], folder: Path) -> list[Path]:
    """Write the generated files into the dbt project `folder`.

    Everything under `models/staging/` is generated: a file there that the contracts no
    longer produce (a dropped table or system, an older layout) is deleted, and so is
    a folder left empty.
    """
    files = render_all(contracts)
    staging = folder / "models/staging"
    if staging.exists():
        for stale in sorted(staging.rglob("*"), reverse=True):
            if stale.is_file() and stale.relative_to(folder).as_posix() not in files:
                stale.unlink()
            elif stale.is_dir() and not any(stale.iterdir()):
                stale.rmdir()
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
