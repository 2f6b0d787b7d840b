"""Channel optimisation against the simulator's truth (never read by the pipeline).

Two questions, two truth files the simulator writes:

- **White space** (`truth/channel_areas.parquet`: per city the true potential, coverage,
  untapped units a week and `deserved_rank`, 1 = most untapped): the published ranking
  (`ml.channel_white_space.rank`) is scored at k by
  - `recall_at_k`: the share of the true top k (deserved_rank <= k) in the ranking's top k;
  - `ndcg_at_k`: normalised discounted cumulative gain with the true untapped units as
    gains (Järvelin & Kekäläinen, ACM TOIS 20(4), 2002): sum over the ranking's top k of
    gain / log2(position + 1), over the same for the true top k.
  k = min(20, max(5, planted cities)): 20 at `demo` (22 planted), 5 at `tiny` (3 planted),
  the issue's k at `demo` and never more than the planted white space can fill at small
  scales. Beside it two baselines: `tier` (the brand's habit: bigger cities first, among
  a tier those with fewest stores) and `random` (the mean over 200 seeded shuffles).
- **Inefficient entities** (`truth/channel_economics.parquet`: per store and distributor
  the true contribution, `unprofitable` and `deserved_action`): the flagged entities
  (`ml.channel_inefficient`) are scored per entity type by precision (flagged that are
  truly unprofitable), recall (truly unprofitable that are flagged) and n (flagged), and
  `action_match` (the share of true positives whose action is the deserved one). Baseline:
  `lowest_sales_decile`, the bottom 10% by revenue in the channel window (what a brand
  without cost-to-serve would call its weakest outlets).

Older worlds have no channel truth: `evaluate_channel` then returns {"skipped": reason}.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

K_MAX = 20
K_MIN = 5
RANDOM_DRAWS = 200
RANDOM_SEED = 19
BASELINE_DECILE = 0.1


def evaluate_channel(truth_dir: Path, published_db: Path) -> dict:
    """Score the white-space ranking and the inefficient list against the truth.

    Returns {"white_space": {k, cities, planted, recall_at_k, ndcg_at_k, baselines:
    {tier, random}}, "inefficient": {stores: {precision, recall, n, true, action_match,
    baseline}, distributors: {...}}}, or {"skipped": reason} when the truth files or the
    published tables are missing.
    """
    areas_path = truth_dir / "channel_areas.parquet"
    econ_path = truth_dir / "channel_economics.parquet"
    missing = [p.name for p in (areas_path, econ_path) if not p.exists()]
    if missing:
        return {
            "skipped": f"no channel truth in {truth_dir} ({', '.join(missing)}): "
            "a world simulated before channel optimisation"
        }
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        ranked = con.sql("select adcode, rank from ml.channel_white_space").pl()
        flagged = con.sql("select entity_type, code, action from ml.channel_inefficient").pl()
        store_rev = con.sql(
            "select store_code as code, revenue from marts.fct_store_economics"
        ).pl()
        dist_rev = con.sql(
            "select distributor_code as code, revenue from marts.fct_distributor_economics"
        ).pl()
        areas_seen = con.sql("select adcode, tier, stores from marts.fct_area_demand_signals").pl()
    except duckdb.Error as exc:
        return {"skipped": f"the warehouse lacks the channel tables ({exc})"}
    finally:
        con.close()
    truth_areas = pl.read_parquet(areas_path)
    truth_econ = pl.read_parquet(econ_path)
    return {
        "white_space": score_white_space(ranked, truth_areas, areas_seen),
        "inefficient": {
            "stores": score_inefficient(
                flagged.filter(pl.col("entity_type") == "store"),
                truth_econ.filter(pl.col("entity_type") == "store"),
                store_rev,
            ),
            "distributors": score_inefficient(
                flagged.filter(pl.col("entity_type") == "distributor"),
                truth_econ.filter(pl.col("entity_type") == "distributor"),
                dist_rev,
            ),
        },
    }


def choose_k(truth_areas: pl.DataFrame) -> int:
    """k = min(20, max(5, planted cities)), at most the number of cities."""
    planted = int(truth_areas["planted"].sum()) if "planted" in truth_areas.columns else 0
    return min(K_MAX, max(K_MIN, planted), truth_areas.height)


def recall_ndcg(order: list[str], truth_areas: pl.DataFrame, k: int) -> tuple[float, float]:
    """(recall@k, NDCG@k) of the city codes in `order` (best first) against the truth's
    `deserved_rank` and `untapped_units_week` (gains)."""
    gain = dict(zip(truth_areas["adcode"], truth_areas["untapped_units_week"], strict=True))
    true_top = set(truth_areas.sort("deserved_rank").head(k)["adcode"])
    top = order[:k]
    recall = len(true_top & set(top)) / k if k else 0.0
    dcg = sum(max(gain.get(c, 0.0), 0.0) / math.log2(i + 2) for i, c in enumerate(top))
    ideal = sorted((max(g, 0.0) for g in gain.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return recall, (dcg / idcg if idcg > 0 else 0.0)


def score_white_space(
    ranked: pl.DataFrame, truth_areas: pl.DataFrame, areas_seen: pl.DataFrame
) -> dict:
    """Recall@k and NDCG@k of `ranked` (adcode, rank) and of the baselines; `areas_seen`
    (adcode, tier, stores) is what the brand sees for the tier baseline."""
    k = choose_k(truth_areas)
    order = ranked.sort("rank")["adcode"].to_list()
    recall, ndcg = recall_ndcg(order, truth_areas, k)
    # the same candidates as the ranking (the brand's regions)
    seen = areas_seen.filter(pl.col("adcode").is_in(ranked["adcode"].to_list()))
    tier_order = seen.sort(["tier", "stores", "adcode"])["adcode"].to_list()
    t_recall, t_ndcg = recall_ndcg(tier_order, truth_areas, k)
    rng = np.random.default_rng(RANDOM_SEED)
    codes = truth_areas["adcode"].to_list()
    draws = [recall_ndcg(list(rng.permutation(codes)), truth_areas, k) for _ in range(RANDOM_DRAWS)]
    return {
        "k": k,
        "cities": truth_areas.height,
        "planted": int(truth_areas["planted"].sum()) if "planted" in truth_areas.columns else None,
        "recall_at_k": round(recall, 3),
        "ndcg_at_k": round(ndcg, 3),
        "baselines": {
            "tier": {"recall_at_k": round(t_recall, 3), "ndcg_at_k": round(t_ndcg, 3)},
            "random": {
                "recall_at_k": round(float(np.mean([d[0] for d in draws])), 3),
                "ndcg_at_k": round(float(np.mean([d[1] for d in draws])), 3),
            },
        },
    }


def _precision_recall(flagged: set[str], truly: set[str]) -> dict:
    tp = len(flagged & truly)
    return {
        "precision": round(tp / len(flagged), 3) if flagged else None,
        "recall": round(tp / len(truly), 3) if truly else None,
        "n": len(flagged),
    }


def score_inefficient(flagged: pl.DataFrame, truth: pl.DataFrame, revenue: pl.DataFrame) -> dict:
    """Precision, recall and n of the flagged codes (code, action) against the truly
    unprofitable (truth: code, unprofitable, deserved_action), the share of true positives
    given the deserved action, and the lowest-sales-decile baseline (`revenue`: code,
    revenue)."""
    truly = set(truth.filter("unprofitable")["code"])
    flagged_codes = set(flagged["code"])
    out = {**_precision_recall(flagged_codes, truly), "true": len(truly)}
    hits = flagged.join(truth.select("code", "deserved_action"), on="code").filter(
        pl.col("code").is_in(list(truly))
    )
    out["action_match"] = (
        round(float((hits["action"] == hits["deserved_action"]).mean()), 3) if hits.height else None
    )
    n_low = max(1, math.ceil(BASELINE_DECILE * revenue.height)) if revenue.height else 0
    lowest = set(revenue.sort(["revenue", "code"]).head(n_low)["code"])
    out["baseline"] = {"rule": "lowest_sales_decile", **_precision_recall(lowest, truly)}
    return out
