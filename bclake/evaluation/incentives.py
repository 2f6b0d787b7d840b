"""How exact the incentive statements are, and how well reward fraud is caught.

Reads the simulator's truth (`incentive_earned`, `reward_fraud`,
`rebate_payment_errors`), so it lives outside the pipeline and runs only from
`bclake evaluate`.

Definitions (fixed here, not tuned to the engine):
- `statement_error`: sum over payee x programme x period of |payable - true
  earned| / sum of true earned, over the periods truth has closed. The statement
  pays `amount_payable` (withheld and forfeited amounts are not paid now); truth
  earns the programme's rules on the true evidence (no farmed scans, reused
  photos judged by the real display, diversion from the planted episodes).
- The baseline is what a brand pays today: what its DMS paid (`dms.rebates`),
  which applies the same rules to the evidence as reported, without fraud or
  diversion checks (`baseline_dms_error`, the same formula).
- `fraud`: event level. An event is flagged when an alert holds its reward
  (withholds); it is fraud when truth lists it in `reward_fraud`. Precision =
  flagged fraud / flagged, recall = flagged fraud / fraud, per kind and overall.
  The baseline rule is a daily cap a brand might set: every store-linked scan of
  an account that scans more than `BASELINE_DAILY_SCANS` codes at one store in a
  day is held.
- Withheld rightly / wrongly: yuan of per-event rewards (programme amount per
  flagged event, before caps) on fraud and on genuine events.
- `reconciliation`: of the payment errors truth planted, the share the
  reconciliation marks as a difference (not matched), and how many differences
  it reports that no planted error, fraud hold or diversion finding explains.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

BASELINE_DAILY_SCANS = 10
KEY = ["programme_id", "payee_code", "period_start"]


def ratio(hits: float, total: float) -> float | None:
    return round(hits / total, 4) if total else None


def _truth(truth_dir: Path, name: str) -> pl.DataFrame:
    parts = sorted((truth_dir / name).glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{truth_dir / name}: no truth parts (simulate a world first)")
    return pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed")


def _statement_error(
    lines: pl.DataFrame, paid: pl.DataFrame, earned: pl.DataFrame
) -> dict[str, dict]:
    """Relative absolute error of the statements and of the DMS, overall and per programme."""
    true = earned.group_by(KEY).agg(pl.col("amount").sum().alias("true_amount"))
    first, last = true["period_start"].min(), true["period_start"].max()
    lines = lines.filter(pl.col("period_start").is_between(first, last))
    paid = paid.filter(pl.col("period_start").is_between(first, last))
    both = (
        true.join(lines, on=KEY, how="full", coalesce=True)
        .join(paid, on=KEY, how="full", coalesce=True)
        .fill_null(0.0)
    )
    out: dict[str, dict] = {}
    groups = {"all": both} | {
        str(k[0]): g for k, g in both.group_by("programme_id", maintain_order=True)
    }
    for name, g in sorted(groups.items()):
        total = float(g["true_amount"].sum())
        out[name] = {
            "true_earned": round(total, 2),
            "payable": round(float(g["amount_payable"].sum()), 2),
            "dms_paid": round(float(g["paid_amount"].sum()), 2),
            "statement_error": ratio(
                float((g["amount_payable"] - g["true_amount"]).abs().sum()), total
            ),
            "baseline_dms_error": ratio(
                float((g["paid_amount"] - g["true_amount"]).abs().sum()), total
            ),
        }
    return out


def _fraud(
    flagged: pl.DataFrame, fraud: pl.DataFrame, baseline: pl.DataFrame, unit: dict[str, float]
) -> dict:
    """Event-level precision and recall of the fraud holds, per kind, with the baseline."""
    truth_ids = fraud.select("event_id", "kind").unique("event_id")
    out: dict = {}
    for kind in ["scan_farming", "photo_reuse", "all"]:
        f = flagged if kind == "all" else flagged.filter(pl.col("kind") == kind)
        t = truth_ids if kind == "all" else truth_ids.filter(pl.col("kind") == kind)
        f_ids = set(f["event_id"].to_list())
        t_ids = set(t["event_id"].to_list())
        hit = len(f_ids & t_ids)
        out[kind] = {
            "precision": ratio(hit, len(f_ids)),
            "recall": ratio(hit, len(t_ids)),
            "flagged_events": len(f_ids),
            "fraud_events": len(t_ids),
            "alerts": f["alert_id"].n_unique(),
        }
    by_event = flagged.unique("event_id").with_columns(
        is_fraud=pl.col("event_id").is_in(list(set(truth_ids["event_id"].to_list()))),
        unit=pl.col("evidence").replace_strict(unit, default=0.0, return_dtype=pl.Float64),
    )
    out["withheld_rightly"] = round(float(by_event.filter("is_fraud")["unit"].sum()), 2)
    out["withheld_wrongly"] = round(float(by_event.filter(~pl.col("is_fraud"))["unit"].sum()), 2)
    scans = set(truth_ids.filter(pl.col("kind") == "scan_farming")["event_id"].to_list())
    b_ids = set(baseline["scan_id"].to_list())
    out["baseline_daily_cap"] = {
        "rule": f"hold every linked scan of an account with > {BASELINE_DAILY_SCANS} "
        "scans at one store in a day",
        "precision": ratio(len(b_ids & scans), len(b_ids)),
        "recall": ratio(len(b_ids & scans), len(scans)),
        "flagged_events": len(b_ids),
    }
    return out


def _reconciliation(recon: pl.DataFrame, errors: pl.DataFrame) -> dict:
    """Share of planted payment errors the reconciliation shows as a difference."""
    flagged = recon.filter(~pl.col("status").is_in(["matched", "not_yet_due"]))
    err = errors.select(*KEY, "kind").unique(KEY)
    found = err.join(flagged.select(KEY), on=KEY, how="inner")
    per_kind = {
        str(k[0]): {
            "planted": g.height,
            "found": g.join(flagged.select(KEY), on=KEY, how="inner").height,
        }
        for k, g in err.group_by("kind", maintain_order=True)
    }
    unexplained = flagged.join(err.select(KEY), on=KEY, how="anti").filter(
        (pl.col("amount_withheld") + pl.col("amount_forfeited")).abs() < 0.005
    )
    return {
        "planted_errors": err.height,
        "recall": ratio(found.height, err.height),
        "per_kind": per_kind,
        "differences": flagged.height,
        "differences_by_status": dict(flagged.group_by("status").len().sort("status").iter_rows()),
        "differences_without_planted_cause": unexplained.height,
    }


def evaluate_incentives(truth_dir: Path, published_db: Path) -> dict:
    """{statement_error, baseline_dms_error, per_programme, fraud, reconciliation}.

    Raises FileNotFoundError when the truth or the warehouse tables are missing.
    """
    earned = _truth(truth_dir, "incentive_earned")
    fraud = _truth(truth_dir, "reward_fraud")
    errors = _truth(truth_dir, "rebate_payment_errors")
    with duckdb.connect(str(published_db), read_only=True) as con:
        lines = con.sql(
            "select programme_id, payee_code, period_start, sum(amount_payable) as amount_payable"
            " from marts.fct_incentive_statement_lines where period_status = 'closed'"
            " group by all"
        ).pl()
        paid = con.sql(
            "select programme_id, payee_code, period_start, sum(paid_amount) as paid_amount"
            " from marts.fct_incentive_reconciliation group by all"
        ).pl()
        flagged = con.sql(
            "select alert_id, kind, evidence, event_id from marts.fct_incentive_fraud_evidence"
            " where withholds"
        ).pl()
        recon = con.sql("select * from marts.fct_incentive_reconciliation").pl()
        unit = dict(
            con.sql(
                "select case kind when 'scan_farming' then 'verified_scan' else 'display_pass' end,"
                " max(reward_at_stake / events) from marts.fct_incentive_fraud_alerts"
                " where events > 0 group by 1"
            ).fetchall()
        )
        baseline = con.sql(
            f"""
            select scan_id from (
                select scan_id, count(*) over (partition by store_code, consumer_id, scan_date) as n
                from intermediate.int_incentive_scan_links
            ) where n > {BASELINE_DAILY_SCANS}
            """
        ).pl()
    per = _statement_error(lines, paid, earned)
    overall = per.pop("all")
    return {
        "statement_error": overall["statement_error"],
        "baseline_dms_error": overall["baseline_dms_error"],
        "true_earned": overall["true_earned"],
        "payable": overall["payable"],
        "dms_paid": overall["dms_paid"],
        "per_programme": per,
        "fraud": _fraud(flagged, fraud, baseline, unit),
        "reconciliation": _reconciliation(recon, errors),
    }
