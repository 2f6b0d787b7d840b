"""The simulator is deterministic and every mechanism shows in what it writes."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bclake.core.codes import BODY_DIGITS, check_values
from bclake.core.contracts import load_contracts
from bclake.simulator.config import get_scale
from bclake.simulator.dirt import EXPECTED
from bclake.simulator.run import simulate


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((root / "landing").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    simulate(tmp_path / "a", "tiny", seed=3, progress=False)
    simulate(tmp_path / "b", "tiny", seed=3, progress=False)
    simulate(tmp_path / "c", "tiny", seed=4, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


# sources bclake's own users write (review decisions from the dashboards), not a system
USER_SOURCES = {"review"}


def test_every_contract_gets_an_export(tiny_home: Path) -> None:
    for contract in load_contracts().values():
        if contract.system in USER_SOURCES:
            continue
        folder = tiny_home / "landing" / contract.system / contract.table
        assert any(p.stat().st_size for p in folder.glob("*")), contract.key


def test_sales_are_censored_by_stock(tiny_home: Path) -> None:
    truth = pl.read_parquet(tiny_home / "truth/demand_daily/*.parquet")
    assert (truth["sales"] <= truth["demand"]).all()
    # a sale is lost only when the shelf ran empty
    assert (truth.filter(pl.col("sales") < pl.col("demand"))["stock_end"] == 0).all()
    assert (
        truth.filter(pl.col("stock_end") > 0)["sales"]
        == truth.filter(pl.col("stock_end") > 0)["demand"]
    ).all()
    lost = (truth["demand"] - truth["sales"]).sum() / truth["demand"].sum()
    assert 0.001 < lost < 0.3  # stock-outs happen, but stores mostly have stock


def test_bullwhip_distributor_orders_vary_more_than_sell_out(tiny_home: Path) -> None:
    stores = pl.read_parquet(tiny_home / "truth/stores.parquet").select(
        "store_code", "distributor_code"
    )
    weekly_sales = (
        pl.read_parquet(tiny_home / "truth/demand_daily/*.parquet")
        .join(stores, on="store_code")
        .group_by("distributor_code", pl.col("date").dt.truncate("1w").alias("week"))
        .agg(pl.col("sales").sum().alias("units"))
    )
    # distributors' orders to the brand, as ingest loaded them from the ERP exports
    weekly_orders = (
        pl.read_parquet(tiny_home / "lake/erp/shipments/**/*.parquet", hive_partitioning=False)
        .group_by("distributor_code", pl.col("order_date").dt.truncate("1w").alias("week"))
        .agg(pl.col("qty_ordered_units").sum().alias("units"))
    )
    ratios = []
    for dist in weekly_sales["distributor_code"].unique():
        s = weekly_sales.filter(pl.col("distributor_code") == dist)["units"]
        o = weekly_orders.filter(pl.col("distributor_code") == dist)["units"]
        if s.var() and o.len() > 20:
            ratios.append(o.var() / s.var())
    assert np.median(ratios) > 1.5


def test_spring_festival_moves_with_the_lunar_date(tiny_home: Path) -> None:
    products = pl.read_parquet(tiny_home / "truth/products.parquet")
    gifts = products.filter(pl.col("category") == "礼盒")["sku_code"]
    daily = (
        pl.read_parquet(tiny_home / "truth/demand_daily/*.parquet")
        .filter(pl.col("sku_code").is_in(gifts))
        .group_by("date")
        .agg(pl.col("demand").sum())
        .sort("date")
    )
    peaks = {}
    for year, festival in ((2024, date(2024, 2, 10)), (2025, date(2025, 1, 29))):
        window = daily.filter(pl.col("date").is_between(date(year, 1, 1), date(year, 2, 28)))
        smooth = window.with_columns(pl.col("demand").rolling_mean(7, center=True))
        peak = smooth.drop_nulls().sort("demand", descending=True)["date"][0]
        assert festival - timedelta(days=25) <= peak <= festival, (year, peak)
        peaks[year] = peak.replace(year=2000)
    assert abs((peaks[2024] - peaks[2025]).days) >= 7


def test_planted_codes_at_their_rates(tiny_home: Path) -> None:
    cfg = get_scale("tiny")
    labels = pl.read_parquet(tiny_home / "truth/scan_labels/*.parquet")
    share = labels.group_by("label").len().with_columns(pl.col("len") / labels.height)
    rate = dict(share.iter_rows())
    assert 0.4 * cfg.forged_rate < rate["forged"] < 2.5 * cfg.forged_rate
    assert rate["diverted"] > 0 and rate["cloned"] > 0
    # forged codes fail the keyed check; every genuine code passes it
    codes = labels["product_code"]
    body = codes.str.slice(0, BODY_DIGITS).cast(pl.Int64).to_numpy()
    check = codes.str.slice(BODY_DIGITS).cast(pl.Int64).to_numpy()
    valid = check_values(body) == check
    assert not valid[(labels["label"] == "forged").to_numpy()].any()
    assert valid[(labels["label"] != "forged").to_numpy()].all()
    # diverted scans come from the planted diverters and land in their target provinces
    plan = pl.read_parquet(tiny_home / "truth/diversion_plan.parquet")
    diverted = labels.filter(pl.col("label") == "diverted")
    assert set(diverted["activated_distributor"]) <= set(plan["distributor_code"])
    assert (diverted["activated_distributor"] != diverted["selling_distributor"]).all()
    # a cloned code is a real code that was also scanned where it was sold
    cloned = set(labels.filter(pl.col("label") == "cloned")["product_code"])
    normal = set(labels.filter(pl.col("label") == "normal")["product_code"])
    assert cloned <= normal


def test_scan_rate_within_its_band(tiny_home: Path) -> None:
    cfg = get_scale("tiny")
    sold = pl.read_parquet(tiny_home / "truth/demand_daily/*.parquet")["sales"].sum()
    labels = pl.read_parquet(tiny_home / "truth/scan_labels/*.parquet")
    genuine = labels.filter(pl.col("label").is_in(["normal", "diverted"])).height
    assert 0.5 * cfg.scan_rate < genuine / sold < 1.5 * cfg.scan_rate


def test_campaigns_have_a_random_holdout_and_trait_driven_uplift(tiny_home: Path) -> None:
    outcomes = pl.read_parquet(tiny_home / "truth/campaign_outcomes/*.parquet")
    holdout = 1 - outcomes["treated"].mean()
    assert 0.1 < holdout < 0.3
    traits = pl.read_parquet(tiny_home / "truth/consumers.parquet")
    joined = outcomes.join(traits, on="consumer_id").with_columns(
        uplift=pl.col("p1") - pl.col("p0")
    )
    corr = np.corrcoef(joined["price_sensitivity"], joined["uplift"])[0, 1]
    assert corr > 0.5


def test_every_fault_type_is_planted_and_listed(tiny_home: Path) -> None:
    manifest = pl.read_parquet(tiny_home / "truth/fault_manifest.parquet")
    assert set(manifest["fault"]) == set(EXPECTED)
    for path in manifest["file"].unique():
        assert (tiny_home / "landing" / path).exists(), path
    meta = json.loads((tiny_home / "landing/_simulation.json").read_text())
    assert {f for f, _ in meta["faults"]} == set(EXPECTED)


@pytest.mark.parametrize("scale", ["tiny"])
def test_clean_world_has_no_faults(tmp_path: Path, scale: str) -> None:
    simulate(tmp_path, scale, seed=1, progress=False, dirt=0)
    assert pl.read_parquet(tmp_path / "truth/fault_manifest.parquet").is_empty()


def test_continue_appends_daily_files_some_late(tmp_path: Path) -> None:
    from bclake.simulator.run import continue_simulation

    simulate(tmp_path, "tiny", seed=5, progress=False, dirt=0)
    meta = json.loads((tmp_path / "landing/_simulation.json").read_text())
    first_new = date(2024, 1, 1) + timedelta(days=meta["days"])
    continue_simulation(tmp_path, 2, progress=False)
    continue_simulation(tmp_path, 1, progress=False)
    folder = tmp_path / "landing/dms/sell_through"
    day_files = sorted(p.name for p in folder.glob(f"sell_through_{first_new.year}-*-*"))
    assert f"sell_through_{first_new.isoformat()}.ndjson" in day_files
    late = [p for p in folder.glob("*_late.ndjson")]
    assert late, "a share of rows arrives one run late"
    for path in late:  # a late file holds rows of the day in its name
        day = path.name.removeprefix("sell_through_").removesuffix("_late.ndjson")
        dates = pl.read_ndjson(path)["bizDate"].unique().to_list()
        assert dates == [day]
    truth = pl.read_parquet(tmp_path / "truth/demand_daily/*.parquet")
    assert truth["date"].max() == first_new + timedelta(days=2)
    # a consumer is the same person in every snapshot, referees included
    snapshots = sorted((tmp_path / "landing/cdp/consumers").glob("consumers_*.ndjson"))
    opening = pl.read_ndjson(snapshots[-1].with_name("consumers_opening.ndjson"))
    latest = pl.read_ndjson(
        snapshots[0] if snapshots[0].name != "consumers_opening.ndjson" else snapshots[1]
    )
    both = opening.join(latest, on="consumerId", suffix="_later")
    assert both.height == opening.height
    assert (both["phone"] == both["phone_later"]).all()
    assert (both["profile"] == both["profile_later"]).all()
    assert json.loads((tmp_path / "landing/_simulation.json").read_text())["days"] == (
        meta["days"] + 3
    )


def test_a_copied_world_continues_where_it_is_now(tmp_path: Path) -> None:
    import shutil

    from bclake.simulator.run import continue_simulation, simulate

    simulate(tmp_path / "original", "tiny", seed=5, progress=False)
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    original = tmp_path / "original/landing"
    before = sorted(p.name for p in original.rglob("*") if p.is_file())
    continue_simulation(tmp_path / "copy", days=2, progress=False)
    assert sorted(p.name for p in original.rglob("*") if p.is_file()) == before
    assert list((tmp_path / "copy/landing/dms/sell_through").glob("*_20??-??-??.ndjson"))


def test_the_saved_state_alone_decides_a_continued_run(tmp_path: Path) -> None:
    import shutil

    from bclake.simulator.run import STATE, continue_simulation
    from bclake.simulator.state import SimState

    simulate(tmp_path / "a", "tiny", seed=5, progress=False, dirt=0)
    state = SimState.load(tmp_path / "a/truth" / STATE)
    assert state.next_day == state.cfg.n_days == state.written_until + 1
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    continue_simulation(tmp_path / "a", 3, progress=False)
    continue_simulation(tmp_path / "b", 3, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert SimState.load(tmp_path / "a/truth" / STATE).next_day == state.cfg.n_days + 3
