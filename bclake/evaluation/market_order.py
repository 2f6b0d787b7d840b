"""How well market-order alerts find the diversion, forged and cloned codes the world planted.

Reads the simulator's truth (`scan_labels`, `diversion_plan`), so it lives outside
the pipeline and runs only from `bclake evaluate`.

Definitions (fixed here, not tuned to the engine):
- An alert is *true* when at least half of its evidence is of its kind in truth:
  scans labelled `diverted` (diversion), `forged` (forged_code), or scans of a
  code that truth shows was copied (cloned_code: a code with any `cloned` scan).
- A *true event* is what a reviewer should be told about, at the alert's grain:
  diversion: a distributor x SKU x week with at least `MIN_EVENT_SCANS` diverted
  scans; forged_code: a SKU x week with a forged scan; cloned_code: a copied code.
  Recall is the share of true events some alert of the kind covers.
- Weeks to detect: per planted diversion episode, weeks from the Monday of its
  start to the first diversion alert of that distributor into that province.
- Baselines are the rules a brand applies today, per scan: every scan of a known
  code outside its distributor's region is diversion; every code in no activated
  case is forged; every code scanned more than once is cloned.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from bclake.core.calendar import week_start

MIN_EVENT_SCANS = 3
KINDS = {"diversion": "diverted", "forged_code": "forged", "cloned_code": "cloned"}


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 3) if total else None


def _read(published_db: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    with duckdb.connect(str(published_db), read_only=True) as con:
        alerts = con.sql(
            "select alert_id, kind, distributor_code, sku_code, week_start, "
            "destination_provinces from marts.fct_market_order_alerts"
        ).pl()
        evidence = con.sql(
            "select alert_id, scan_id, product_code from marts.fct_market_order_alert_scans"
        ).pl()
        scans = con.sql(
            "select scan_id, sku_code, scan_date, product_code, is_cross_region, code_known "
            "from intermediate.int_scan_journeys"
        ).pl()
    return alerts, evidence, scans


def evaluate_market_order(truth_dir: Path, published_db: Path) -> dict:
    """Per kind: precision, recall, alerts, true_events (plus scan-level scores and baselines).

    Returns {kind: {...}, "scan_level": {kind: {...}}, "baseline_scan_level": {...}}.
    Raises FileNotFoundError when the truth or the warehouse tables are missing.
    """
    alerts, evidence, scans = _read(published_db)
    labels = pl.read_parquet(truth_dir / "scan_labels" / "*.parquet").select(
        "scan_id", "label", "activated_distributor"
    )
    scans = scans.join(labels, on="scan_id", how="inner").with_columns(
        week_start=pl.col("scan_date").dt.truncate("1w")
    )
    cloned_codes = scans.filter(pl.col("label") == "cloned")["product_code"].unique()
    scans = scans.with_columns(code_cloned=pl.col("product_code").is_in(cloned_codes.implode()))
    ev = evidence.join(alerts.select("alert_id", "kind"), on="alert_id").join(
        scans.select("scan_id", "label", "code_cloned"), on="scan_id", how="left"
    )
    ev = ev.with_columns(
        of_kind=pl.when(pl.col("kind") == "cloned_code")
        .then(pl.col("code_cloned"))
        .otherwise(pl.col("label") == pl.col("kind").replace_strict(KINDS))
        .fill_null(False)
    )
    truth_alert = ev.group_by("alert_id").agg(pl.col("of_kind").mean().alias("share"))
    alerts = alerts.join(truth_alert, on="alert_id", how="left").with_columns(
        true=pl.col("share").fill_null(0) >= 0.5
    )
    report: dict = {}
    for kind in KINDS:
        mine = alerts.filter(pl.col("kind") == kind)
        events, found = _events(kind, scans, mine, ev)
        report[kind] = {
            "alerts": mine.height,
            "true_alerts": int(mine["true"].sum()),
            "precision": _ratio(int(mine["true"].sum()), mine.height),
            "true_events": events,
            "recall": _ratio(found, events),
        }
    report["diversion"] |= _time_to_detect(truth_dir, alerts.filter(pl.col("kind") == "diversion"))
    report["scan_level"] = _scan_level(scans, ev)
    report["baseline_scan_level"] = _baseline(scans)
    return report


def _events(
    kind: str, scans: pl.DataFrame, mine: pl.DataFrame, ev: pl.DataFrame
) -> tuple[int, int]:
    """(true events, of them covered by an alert of `kind`)."""
    if kind == "diversion":
        cells = (
            scans.filter(pl.col("label") == "diverted")
            .group_by(
                pl.col("activated_distributor").alias("distributor_code"), "sku_code", "week_start"
            )
            .len()
            .filter(pl.col("len") >= MIN_EVENT_SCANS)
        )
        hit = cells.join(mine, on=["distributor_code", "sku_code", "week_start"], how="semi")
        return cells.height, hit.height
    if kind == "forged_code":
        cells = scans.filter(pl.col("label") == "forged").select("sku_code", "week_start").unique()
        hit = cells.join(mine, on=["sku_code", "week_start"], how="semi")
        return cells.height, hit.height
    codes = scans.filter(pl.col("code_cloned"))["product_code"].unique()
    flagged = ev.filter(pl.col("kind") == "cloned_code")["product_code"].unique()
    return codes.len(), int(codes.is_in(flagged.implode()).sum())


def _time_to_detect(truth_dir: Path, diversion: pl.DataFrame) -> dict:
    plan = pl.read_parquet(truth_dir / "diversion_plan.parquet")
    weeks: list[float] = []
    missed = 0
    for ep in plan.iter_rows(named=True):
        start = week_start(ep["start_date"])
        hits = diversion.filter(
            pl.col("distributor_code") == ep["distributor_code"],
            pl.col("destination_provinces") == ep["target_province"],
            pl.col("week_start") >= start,
            pl.col("week_start") <= ep["end_date"],
        )
        if hits.is_empty():
            missed += 1
        else:
            weeks.append((hits["week_start"].min() - start).days / 7)
    median = float(pl.Series(weeks).median()) if weeks else None
    return {"episodes": plan.height, "episodes_missed": missed, "median_weeks_to_detect": median}


def _scan_level(scans: pl.DataFrame, ev: pl.DataFrame) -> dict:
    out = {}
    for kind, label in KINDS.items():
        mine = ev.filter(pl.col("kind") == kind).unique("scan_id")
        truth_col = pl.col("code_cloned") if kind == "cloned_code" else pl.col("label") == label
        positives = scans.filter(truth_col).height
        hits = int(mine["of_kind"].sum())
        out[kind] = {
            "scans": mine.height,
            "precision": _ratio(hits, mine.height),
            "recall": _ratio(hits, positives),
        }
    return out


def _baseline(s: pl.DataFrame) -> dict:
    """Today's per-scan rules (see the module docstring), scored like the engine."""
    repeated = s.group_by("product_code").len().filter(pl.col("len") > 1)["product_code"]
    rules = {
        "diversion": (pl.col("is_cross_region").fill_null(False), pl.col("label") == "diverted"),
        "forged_code": (~pl.col("code_known").fill_null(False), pl.col("label") == "forged"),
        "cloned_code": (pl.col("product_code").is_in(repeated.implode()), pl.col("code_cloned")),
    }
    out = {}
    for kind, (flag, truth) in rules.items():
        flagged = s.filter(flag)
        hits = flagged.filter(truth).height
        out[kind] = {
            "scans": flagged.height,
            "precision": _ratio(hits, flagged.height),
            "recall": _ratio(hits, s.filter(truth).height),
        }
    return out
