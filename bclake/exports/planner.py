"""Planner files: forecasts and replenishment suggestions as CSV, Parquet and XLSX.

Reads only the published warehouse, so files always match what dashboards show.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from bclake.core.xlsx import Headers, write_xlsx

# what each planner file holds: sheet -> query over the published warehouse
QUERIES = {
    "forecast": """
        select f.region, f.sku_code, p.sku_name, p.category, f.week_start, f.horizon,
               round(f.p10, 1) as p10, round(f.p50, 1) as p50, round(f.p90, 1) as p90,
               f.forecast_source
        from ml.forecast_region_sku_week as f
        left join marts.dim_product as p using (sku_code)
        order by f.region, f.sku_code, f.week_start
    """,
    "distributor_forecast": """
        select f.distributor_code, d.region, f.sku_code, p.sku_name, f.week_start,
               round(f.p10, 1) as p10, round(f.p50, 1) as p50, round(f.p90, 1) as p90,
               f.forecast_source
        from ml.forecast_distributor_sku_week as f
        inner join marts.dim_distributor as d using (distributor_code)
        left join marts.dim_product as p using (sku_code)
        order by f.distributor_code, f.sku_code, f.week_start
    """,
    "store_orders": """
        select r.region, r.distributor_code, r.store_code, s.store_name, r.sku_code, p.sku_name,
               r.as_of, r.suggested_qty, r.rule, round(r.forecast_mean, 1) as forecast_mean,
               r.safety_stock, r.order_up_to, r.on_hand, r.on_order, r.lead_days,
               r.order_multiple, r.reason_zh, r.reason_en
        from ml.replenishment_store_sku as r
        left join marts.dim_store as s using (store_code)
        left join marts.dim_product as p using (sku_code)
        order by r.distributor_code, r.store_code, r.sku_code
    """,
    "distributor_orders": """
        select r.region, r.distributor_code, r.sku_code, p.sku_name, r.as_of,
               r.suggested_qty, r.rule, round(r.forecast_mean, 1) as forecast_mean,
               r.safety_stock, r.order_up_to, r.on_hand, r.on_order, r.lead_days,
               r.order_multiple, r.reason_zh, r.reason_en
        from ml.replenishment_distributor_sku as r
        left join marts.dim_product as p using (sku_code)
        order by r.distributor_code, r.sku_code
    """,
}
# which sheets each scope gets: a distributor sees its own rows only, never a region's
SCOPE_SHEETS = {
    "company": ("forecast", "distributor_forecast", "store_orders", "distributor_orders"),
    "region": ("forecast", "distributor_forecast", "store_orders", "distributor_orders"),
    "distributor": ("distributor_forecast", "store_orders", "distributor_orders"),
}
# column -> (header shown in the spreadsheet, unit): `bclake.core.xlsx.Headers`
HEADERS: Headers = {
    "region": ("region 区域", ""),
    "distributor_code": ("distributor_code 经销商", ""),
    "store_code": ("store_code 门店", ""),
    "store_name": ("store_name 门店名称", ""),
    "sku_code": ("sku_code 产品编码", ""),
    "sku_name": ("sku_name 产品名称", ""),
    "category": ("category 品类", ""),
    "week_start": ("week_start 周一", "date"),
    "horizon": ("horizon 提前周数", "weeks"),
    "p10": ("p10 低", "units"),
    "p50": ("p50 中位", "units"),
    "p90": ("p90 高", "units"),
    "forecast_source": ("forecast_source 预测来源", ""),
    "as_of": ("as_of 建议日期", "date"),
    "suggested_qty": ("suggested_qty 建议补货", "units"),
    "rule": ("rule 规则", ""),
    "forecast_mean": ("forecast_mean 保护期需求", "units"),
    "safety_stock": ("safety_stock 安全库存", "units"),
    "order_up_to": ("order_up_to 目标库存", "units"),
    "on_hand": ("on_hand 现有库存", "units"),
    "on_order": ("on_order 在途", "units"),
    "lead_days": ("lead_days 到货天数", "days"),
    "order_multiple": ("order_multiple 包装倍数", "units"),
    "reason_zh": ("reason_zh 原因", ""),
    "reason_en": ("reason_en reason", ""),
}


def _write_table(frame: pl.DataFrame, folder: Path, name: str) -> None:
    """CSV (UTF-8 with BOM, which Excel needs) and Parquet, each replaced atomically."""
    for suffix, write in (
        (".csv", lambda p: frame.write_csv(p, include_bom=True)),
        (".parquet", frame.write_parquet),
    ):
        path = folder / f"{name}{suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        write(tmp)
        os.replace(tmp, path)


def _write_scope(tables: dict[str, pl.DataFrame], folder: Path, scope: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    sheets = {name: tables[name] for name in SCOPE_SHEETS[scope]}
    for name, frame in sheets.items():
        _write_table(frame, folder, name)
    write_xlsx(sheets, folder / "plan.xlsx", HEADERS)
    return sum(f.height for f in sheets.values())


def write_planner_files(published_db: Path, exports_dir: Path) -> dict[str, int]:
    """Planner files for the whole company and for every region and distributor.

    Layout: `company/`, `region/<region>/`, `distributor/<code>/`, each with one CSV and
    one Parquet per table and `plan.xlsx` holding every table as a sheet. A region or
    distributor folder holds only its own rows. Returns rows written per folder.
    """
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        tables = {name: con.sql(q).pl() for name, q in QUERIES.items()}
    finally:
        con.close()
    written = {"company": _write_scope(tables, exports_dir / "company", "company")}
    for (region,), _ in tables["distributor_orders"].group_by("region"):
        scoped = {n: t.filter(pl.col("region") == region) for n, t in tables.items()}
        written[f"region/{region}"] = _write_scope(
            scoped, exports_dir / "region" / region, "region"
        )
    for (code,), _ in tables["distributor_orders"].group_by("distributor_code"):
        scoped = {
            n: t.filter(pl.col("distributor_code") == code)
            for n, t in tables.items()
            if "distributor_code" in t.columns
        }
        written[f"distributor/{code}"] = _write_scope(
            scoped, exports_dir / "distributor" / code, "distributor"
        )
    return written
