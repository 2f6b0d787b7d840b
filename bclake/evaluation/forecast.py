"""Forecast backtests scored against the simulator's true demand.

The pipeline scores its backtest against what it observed (sell-through, which a
stock-out censors). Here the same backtest rows are scored against the true,
uncensored demand of the same stores, summed to the forecast's grain. Only
evaluation reads the truth.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from bclake.ml.baselines import BASELINES
from bclake.ml.metrics import METRICS, score_cv
from bclake.ml.planning import QUANTILE_COLS


def true_weekly_demand(truth_dir: Path, keys: list[str], stores: pl.DataFrame) -> pl.LazyFrame:
    """True demand by `keys` x week (Monday start) for the stores in `stores`."""
    demand = pl.scan_parquet(truth_dir / "demand_daily" / "*.parquet").join(
        stores.lazy(), on="store_code"
    )
    return demand.group_by(*keys, pl.col("date").dt.truncate("1w").alias("week_start")).agg(
        pl.col("demand").sum().cast(pl.Float64).alias("true_demand")
    )


def _summary(scores: pl.DataFrame) -> dict:
    overall = scores.filter(pl.col("horizon").is_null())
    out = {}
    for r in overall.iter_rows(named=True):
        out[r["method"]] = {m: _round(r[m]) for m in METRICS if r[m] is not None}
    return out


def _by_horizon(scores: pl.DataFrame, method: str = "lightgbm") -> list[dict]:
    rows = scores.filter(pl.col("horizon").is_not_null() & (pl.col("method") == method))
    return [
        {"horizon": r["horizon"], **{m: _round(r[m]) for m in METRICS if r[m] is not None}}
        for r in rows.sort("horizon").iter_rows(named=True)
    ]


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def evaluate_forecasts(truth_dir: Path, published_db: Path) -> dict:
    """Model vs baselines on the backtest, against true demand, per forecast grain."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        region_bt = con.sql("select * from ml.forecast_region_sku_week_backtest").pl()
        store_bt = con.sql("select * from ml.forecast_store_sku_week_backtest").pl()
        reporting = con.sql(
            "select distinct f.store_code, s.region from marts.fct_sell_through as f "
            "inner join marts.dim_store as s using (store_code)"
        ).pl()
    finally:
        con.close()
    report: dict = {"against": "true uncensored demand of the stores that report sell-through"}
    models = {"lightgbm": QUANTILE_COLS}
    if "no_scans_p50" in region_bt.columns:
        models["lightgbm_no_scans"] = {q: f"no_scans_{c}" for q, c in QUANTILE_COLS.items()}
    for name, bt, keys, stores in (
        ("region_sku_week", region_bt, ["region", "sku_code"], reporting),
        ("store_sku_week", store_bt, ["store_code", "sku_code"], reporting.select("store_code")),
    ):
        truth = true_weekly_demand(truth_dir, keys, stores)
        bt = (
            bt.lazy()
            .join(truth, on=[*keys, "week_start"], how="left")
            .with_columns(observed=pl.col("y"), y=pl.col("true_demand").fill_null(0.0))
            .collect()
        )
        use = {k: v for k, v in models.items() if v[0.5] in bt.columns}
        scores = score_cv(bt, use, BASELINES)
        observed = score_cv(bt.with_columns(y=pl.col("observed")), use, BASELINES)
        summary = _summary(scores)
        report[name] = {
            "rows": bt.height,
            "cutoffs": sorted(str(c) for c in bt["cutoff"].unique()),
            "vs_truth": summary,
            "vs_observed": _summary(observed),
            "lightgbm_by_horizon": _by_horizon(scores),
            "beats_every_baseline": all(
                summary["lightgbm"]["wape"] < summary[b]["wape"] for b in BASELINES
            ),
        }
    region = report["region_sku_week"]["vs_truth"]
    if "lightgbm_no_scans" in region:
        report["scan_features"] = {
            "wape_with_scans": region["lightgbm"]["wape"],
            "wape_without_scans": region["lightgbm_no_scans"]["wape"],
            "helps": region["lightgbm"]["wape"] < region["lightgbm_no_scans"]["wape"],
        }
    return report
