"""Decision-engine benchmark: what market order, incentives, marketing and channel
optimisation add to a build.

On a data root whose lake is loaded (the ingest benchmark leaves one), time a full
`dbt build` (peak RSS of the dbt process from `getrusage`), then take from dbt's
run_results.json the seconds of each engine's models and their tests (market order:
`int_code_repeat_scans`, `marts/market_order/`; incentives: `int_incentive_*`,
`marts/incentives/`), and time the two signals detection added to
`int_scan_journeys` on their own, on the same database: the keyed code check over
every scan and the distance from each scan cell to the distributor's nearest store.
Then fit the marketing engine (`bclake.ml.uplift.plan_campaigns`: learner selection,
refits and the lists of `config/marketing.yaml`) on the built database, with its
seconds and this process's peak RSS, and the channel plan (`bclake.ml.channel.plan_channel`
over the four `marts/channel/` marts, whose dbt seconds are listed like the others').
Prints scans/s and each engine's share of the build (target: detection adds at most 25%
at `large`, under 4 GiB).

    python -m bench.engines_bench --root DIR
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from bclake.core.channel import load_channel
from bclake.core.duckdb_functions import register
from bclake.core.marketing import expand_plans, load_marketing
from bclake.core.settings import Settings
from bclake.ml.channel import ChannelInputs, plan_channel
from bclake.ml.uplift import plan_campaigns
from bclake.orchestration.assets.channel import MARTS as CHANNEL_MARTS
from bench.warehouse_bench import dbt, load_lake

ENGINES = {
    "detection": ("int_code_repeat_scans", "fct_market_order"),
    "incentives": ("int_incentive_", "fct_incentive_"),
    "marketing": (
        "int_store_promotions",
        "fct_marketing_",
        "fct_campaign_quality",
        "fct_campaign_uplift_",
        "fct_store_promo_",
        "fct_store_activity_",
    ),
    "channel": tuple(CHANNEL_MARTS),
}

SIGNALS = {
    "keyed code check": """
        select count(*) filter (where bclake_code_signature_ok(product_code))
        from staging.stg_code__product_scans
    """,
    "distance to territory": """
        with p as (
            select distinct distributor_code, round(lat, 1) as la, round(lon, 1) as lo
            from intermediate.int_scan_journeys
            where distributor_code is not null and lat is not null
        )
        select count(*) from (
            select p.distributor_code, la, lo,
                   min(2 * 6371 * asin(sqrt(power(sin(radians(s.lat - la) / 2), 2)
                       + cos(radians(la)) * cos(radians(s.lat))
                       * power(sin(radians(s.lon - lo) / 2), 2)))) as km
            from p join staging.stg_dms__stores as s using (distributor_code)
            group by all
        )
    """,
}


def _engine_seconds(target: Path, names: tuple[str, ...]) -> dict[str, float]:
    """Seconds of the models and of the tests (unit tests included) whose id holds a name."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    out: dict[str, float] = {}
    for r in results:
        if any(name in r["unique_id"] for name in names):
            kind = "models" if r["unique_id"].startswith("model.") else "tests"
            out[kind] = out.get(kind, 0.0) + r["execution_time"]
    return out


def _marketing_fit(settings: Settings) -> tuple[float, float, int]:
    """Seconds of `plan_campaigns` on the built database, peak RSS (GiB) and training rows."""
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        categories = con.sql("select distinct category from marts.dim_product").pl()
        training = con.sql("select * from marts.fct_campaign_uplift_training").pl()
        candidates = con.sql("select * from marts.fct_marketing_candidates").pl()
    config = load_marketing(settings.marketing_file)
    plans = expand_plans(config, categories["category"].to_list())
    started = time.perf_counter()
    plan_campaigns(training, candidates, plans, margin_rate=config.margin_rate)
    seconds = time.perf_counter() - started
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, training.height


def _channel_plan(settings: Settings) -> tuple[float, int]:
    """Seconds of `plan_channel` on the built database and the entities it scores."""
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        inputs = ChannelInputs(*(con.sql(f"select * from marts.{m}").pl() for m in CHANNEL_MARTS))
    started = time.perf_counter()
    plan = plan_channel(
        inputs, load_channel(settings.channel_file), inputs.stores["window_end"].max()
    )
    return time.perf_counter() - started, plan.scores.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()
    settings = load_lake(args.root)
    console = Console()
    full = dbt(settings, "build", "--full-refresh")
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    target = settings.home / "bench_dbt_target"
    parts = {engine: _engine_seconds(target, names) for engine, names in ENGINES.items()}
    # first in this process, so its peak RSS is the model's, not the signal queries'
    fit, fit_gib, rows_in = _marketing_fit(settings)
    channel_fit, entities = _channel_plan(settings)
    signals = {}
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        register(con)
        scans = con.execute("select count(*) from staging.stg_code__product_scans").fetchone()[0]
        for name, sql in SIGNALS.items():
            started = time.perf_counter()
            con.execute(sql).fetchall()
            signals[name] = time.perf_counter() - started
    detection = sum(parts["detection"].values()) + sum(signals.values())
    incentives = sum(parts["incentives"].values())
    marketing = sum(parts["marketing"].values())
    table = Table(title=f"decision engines over {settings.home.name} ({scans:,} scans)")
    for col in ("part", "seconds", "share of full build", "scans/s"):
        table.add_column(col, justify="left" if col == "part" else "right")
    table.add_row("full dbt build", f"{full:.1f}", "1.00", f"{scans / full:,.0f}")
    rows = [(f"detection {k}", v) for k, v in parts["detection"].items()]
    rows += [*signals.items(), ("detection, all", detection)]
    rows += [(f"incentives {k}", v) for k, v in parts["incentives"].items()]
    rows += [("incentives, all", incentives)]
    rows += [(f"marketing {k}", v) for k, v in parts["marketing"].items()]
    rows += [("marketing dbt, all", marketing)]
    rows += [(f"channel {k}", v) for k, v in parts["channel"].items()]
    rows += [("channel dbt, all", sum(parts["channel"].values()))]
    for name, sec in rows:
        table.add_row(name, f"{sec:.1f}", f"{sec / full:.3f}", f"{scans / max(sec, 1e-9):,.0f}")
    console.print(table)
    console.print(f"peak RSS of dbt: {peak_gib:.2f} GiB")
    console.print(
        f"marketing model (selection, refits, lists) on {rows_in:,} training rows: "
        f"{fit:.1f} s ({fit / full:.3f} of the full dbt build), peak RSS {fit_gib:.2f} GiB"
    )
    console.print(
        f"channel plan (scores, white space, plan) of {entities:,} stores and distributors: "
        f"{channel_fit:.2f} s ({channel_fit / full:.4f} of the full dbt build)"
    )


if __name__ == "__main__":
    main()
