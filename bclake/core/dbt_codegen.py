"""dbt sources and staging models generated from the data contracts.

The contracts are the one description of every source table; the dbt layer that
mirrors them (sources with their lake locations and freshness, one `stg_` model
per table with its key deduplicated, and the key/required/allowed-value tests)
is rendered from them so that the two can never drift. `bclake contracts --dbt`
writes the files; a test fails when they are stale.
"""

from __future__ import annotations

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
}


def staging_name(contract: Contract) -> str:
    return f"stg_{contract.system}__{contract.table}"


def _columns(contract: Contract) -> list[str]:
    return [c.name for c in contract.all_columns] + [d.name for d in contract.derived]


def render_staging_sql(contract: Contract) -> str:
    """One row per contract key: the version ingested last wins (a re-sent file corrects)."""
    keys = ", ".join(f"'{k}'" for k in contract.primary_key)
    columns = ",\n".join(f"    {c}" for c in [*_columns(contract), *LINEAGE])
    return (
        f"-- {HEADER.format(system=contract.system, table=contract.table)}\n"
        f"-- {contract.description}\n"
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
    """Sources over the lake's Parquet, absolute paths from BCLAKE_LAKE (set by the settings)."""
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
                            "freshness": {
                                "warn_after": {"count": c.freshness_hours, "period": "hour"}
                            }
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


def render_all(contracts: list[Contract]) -> dict[str, str]:
    """Relative path under the dbt project -> file text."""
    files = {
        "seeds/cn_calendar.csv": render_calendar_seed(),
        "seeds/kpi_definitions.csv": render_kpi_seed(),
        "models/staging/_sources.yml": "# "
        + HEADER.format(system="*", table="*")
        + "\n"
        + render_sources_yml(contracts),
        "models/staging/_staging.yml": "# "
        + HEADER.format(system="*", table="*")
        + "\n"
        + render_staging_yml(contracts),
    }
    for c in contracts:
        files[f"models/staging/{staging_name(c)}.sql"] = render_staging_sql(c)
    return files


def write_all(contracts: list[Contract], folder: Path) -> list[Path]:
    """Write the generated files into the dbt project `folder`; drop stale staging models."""
    files = render_all(contracts)
    for stale in (folder / "models/staging").glob("stg_*.sql"):
        if f"models/staging/{stale.name}" not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
