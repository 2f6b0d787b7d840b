"""Supply-plan benchmark: seconds to plan at the sizes of `tiny`, `demo` and `large`.

The plan's size depends on SKUs, DCs, plants x categories and weeks, not on stores or
scans, so each scale's plan is timed on generated inputs of its dimensions (seeded:
seasonal weekly demand with a P10-P90 spread, stock of one to four weeks, capacity at
1.1x mean demand per plant x category so some weeks bind). The reference, timed in the
same run, is HiGHS solving one plant x category's programme alone (the largest block of
`demo`), so the ratio says what the plan costs beyond the solver.

    python -m bench.supply_bench [--scales tiny,demo,large] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date, timedelta

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from bclake.core.supply import SupplyConfig
from bclake.ml.supply import SupplyInputs, plan_supply
from bclake.simulator.config import SCALES
from bclake.simulator.world import CATEGORIES, PLANTS, REGIONS

AS_OF = date(2025, 7, 14)


def inputs_for(n_skus: int, n_regions: int, seed: int = 0) -> SupplyInputs:
    """Generated plan inputs with `n_skus` SKUs and one DC per region (see the module)."""
    rng = np.random.default_rng(seed)
    regions = REGIONS[:n_regions]
    cats = list(CATEGORIES)
    skus = [f"SKU{i:04d}" for i in range(n_skus)]
    cat_of = {k: cats[i % len(cats)] for i, k in enumerate(skus)}
    plant_of = {k: PLANTS[cats.index(c) % len(PLANTS)][0] for k, c in cat_of.items()}
    level = rng.lognormal(4.0, 1.0, size=(n_regions, n_skus))
    rows, stock = [], []
    for r, region in enumerate(regions):
        for k, sku in enumerate(skus):
            for w in range(26):
                p50 = level[r, k] * (1 + 0.3 * np.sin((w + k) / 4))
                rows.append((region, sku, AS_OF + timedelta(weeks=w), 0.6 * p50, p50, 1.5 * p50))
            stock.append((f"DC{r + 1:02d}", sku, int(level[r, k] * rng.uniform(1, 4))))
    forecast = pl.DataFrame(
        rows, schema=["region", "sku_code", "week_start", "p10", "p50", "p90"], orient="row"
    )
    mean = forecast.group_by("sku_code").agg(pl.col("p50").sum() / 26)
    cap = (
        mean.with_columns(
            plant_code=pl.col("sku_code").replace_strict(plant_of),
            category=pl.col("sku_code").replace_strict(cat_of),
        )
        .group_by("plant_code", "category")
        .agg(capacity_units=(pl.col("p50").sum() * 1.1).cast(pl.Int64))
    )
    return SupplyInputs(
        forecast=forecast,
        dcs=pl.DataFrame(
            {
                "warehouse_code": [f"DC{r + 1:02d}" for r in range(n_regions)],
                "region": regions,
                "lat": rng.uniform(22, 45, n_regions),
                "lon": rng.uniform(100, 125, n_regions),
            }
        ),
        stock=pl.DataFrame(
            stock, schema=["warehouse_code", "sku_code", "on_hand_units"], orient="row"
        ),
        products=pl.DataFrame(
            {
                "sku_code": skus,
                "category": [cat_of[k] for k in skus],
                "case_pack": rng.choice([6, 12, 24], size=n_skus),
                "list_price": rng.uniform(3, 80, size=n_skus),
            }
        ),
        sku_plants=pl.DataFrame({"sku_code": skus, "plant_code": [plant_of[k] for k in skus]}),
        capacity=cap,
        last_output=pl.DataFrame(schema={"sku_code": pl.String, "output_units": pl.Int64}),
    )


def _reference(config: SupplyConfig) -> float:
    """Seconds of the largest demo block alone (one plant x category), plan included."""
    inputs = inputs_for(SCALES["demo"].n_skus, SCALES["demo"].n_regions)
    cat = inputs.products["category"][0]
    keep = inputs.products.filter(pl.col("category") == cat)["sku_code"].to_list()
    one = SupplyInputs(
        forecast=inputs.forecast.filter(pl.col("sku_code").is_in(keep)),
        dcs=inputs.dcs,
        stock=inputs.stock.filter(pl.col("sku_code").is_in(keep)),
        products=inputs.products.filter(pl.col("sku_code").is_in(keep)),
        sku_plants=inputs.sku_plants.filter(pl.col("sku_code").is_in(keep)),
        capacity=inputs.capacity,
        last_output=inputs.last_output,
    )
    started = time.perf_counter()
    plan_supply(one, config, AS_OF)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="tiny,demo,large")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = SupplyConfig(version=1)
    reference = min(_reference(config) for _ in range(args.repeat))
    table = Table(title=f"supply plan (reference: one demo block, {reference:.3f} s)")
    for col in ("scale", "SKUs", "DCs", "seconds (best)", "x reference", "rows", "transfers"):
        table.add_column(col, justify="left" if col == "scale" else "right")
    for name in args.scales.split(","):
        scale = SCALES[name]
        inputs = inputs_for(scale.n_skus, scale.n_regions)
        best, plan = float("inf"), None
        for _ in range(args.repeat):
            started = time.perf_counter()
            plan = plan_supply(inputs, config, AS_OF)
            best = min(best, time.perf_counter() - started)
        assert plan is not None
        table.add_row(
            name,
            str(scale.n_skus),
            str(scale.n_regions),
            f"{best:.2f}",
            f"{best / reference:.1f}",
            f"{plan.production.height:,}",
            f"{plan.transfers.height:,}",
        )
    Console().print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Console().print(f"peak RSS of this process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
