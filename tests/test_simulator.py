"""The simulator is deterministic and every mechanism shows in what it writes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bclake.core.codes import BODY_DIGITS, check_values
from bclake.core.contracts import load_contracts
from bclake.simulator.config import SCALES, get_scale
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
    # the planted fraud, the payment errors and what the programmes truly earn too
    for part in ("incentive_earned", "reward_fraud", "rebate_payment_errors", "scan_labels"):
        a, b = (pl.read_parquet(tmp_path / w / "truth" / part / "*.parquet") for w in "ab")
        assert a.height and a.equals(b), part


# sources bclake's own users write (review decisions from the dashboards), not a system
# sources people write, not the simulated systems: review decisions (the dashboard), and
# erasure requests (`bclake erase`; a simulated request would erase people the truth scores)
USER_SOURCES = {"review.alert_decisions", "cdp.erasure_requests"}


def test_every_contract_gets_an_export(tiny_home: Path) -> None:
    for contract in load_contracts().values():
        if contract.key in USER_SOURCES:
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
    assert rate["cloned"] > 0
    # forged codes fail the keyed check; every genuine code passes it
    codes = labels["product_code"]
    body = codes.str.slice(0, BODY_DIGITS).cast(pl.Int64).to_numpy()
    check = codes.str.slice(BODY_DIGITS).cast(pl.Int64).to_numpy()
    valid = check_values(body) == check
    assert not valid[(labels["label"] == "forged").to_numpy()].any()
    assert valid[(labels["label"] != "forged").to_numpy()].all()
    # a cloned code is a real code that was also scanned where it was sold
    cloned = set(labels.filter(pl.col("label") == "cloned")["product_code"])
    normal = set(labels.filter(pl.col("label") == "normal")["product_code"])
    assert cloned <= normal


def test_diverted_scans_come_from_planted_diverters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny's one diverter is small next to its target province, so a few diverted scans at
    # most (none at some seeds): a world with more diverters, diverting all they can, shows
    # them plainly
    tiny = replace(get_scale("tiny"), diverter_share=0.3, diversion_share=1.0)
    monkeypatch.setitem(SCALES, "tiny", tiny)
    simulate(tmp_path, "tiny", seed=7, progress=False, dirt=0)
    labels = pl.read_parquet(tmp_path / "truth/scan_labels/*.parquet")
    diverted = labels.filter(pl.col("label") == "diverted")
    assert diverted.height >= 20
    # they come from the planted diverters, and not from the distributor of the store
    plan = pl.read_parquet(tmp_path / "truth/diversion_plan.parquet")
    assert set(diverted["activated_distributor"]) <= set(plan["distributor_code"])
    assert (diverted["activated_distributor"] != diverted["selling_distributor"]).all()


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


# --- incentive programmes: evidence, planted reward fraud, the DMS's payments --------------


@pytest.fixture(scope="module")
def clean_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world without dirt, so its exports read back as written."""
    home = tmp_path_factory.mktemp("incentives")
    simulate(home, "tiny", seed=7, progress=False, dirt=0)
    return home


def _landing(home: Path, folder: str) -> pl.DataFrame:
    files = sorted((home / "landing" / folder).glob("*"))
    frames = [
        pl.read_ndjson(p) if p.suffix == ".ndjson" else pl.read_csv(p, infer_schema=False)
        for p in files
        if p.stat().st_size
    ]
    return pl.concat(frames, how="diagonal_relaxed")


def test_reused_photos_are_planted_and_labelled(clean_tiny: Path) -> None:
    checks = _landing(clean_tiny, "dms/display_checks")
    assert checks["photoHash"].str.contains(r"^[0-9a-f]{16}$").all()
    fraud = pl.read_parquet(clean_tiny / "truth/reward_fraud/*.parquet")
    reused = fraud.filter(pl.col("kind") == "photo_reuse")
    assert reused.height >= 2 and reused["consumer_id"].is_null().all()
    stores = pl.read_parquet(clean_tiny / "truth/stores.parquet").select(
        "store_code", "distributor_code"
    )
    pairs = (
        reused.join(checks, left_on="event_id", right_on="checkId")
        .join(checks, left_on="source_check_id", right_on="checkId", suffix="_src")
        .join(stores, left_on="storeCode", right_on="store_code")
        .join(stores, left_on="storeCode_src", right_on="store_code", suffix="_src")
    )
    assert pairs.height == reused.height
    # the same photo, at another store of the same distributor, taken earlier
    assert (pairs["photoHash"] == pairs["photoHash_src"]).all()
    assert (pairs["storeCode"] != pairs["storeCode_src"]).all()
    assert (pairs["distributor_code"] == pairs["distributor_code_src"]).all()
    assert (pairs["checkDate_src"] < pairs["checkDate"]).all()
    # reported as a pass; every other photo hash is the check's own
    assert pairs["compliant"].all() and (pairs["score"] >= 75).all()
    shared = checks.filter(pl.col("photoHash").is_duplicated())
    assert shared.height == 2 * reused.height


def test_farmed_scans_are_labelled_and_bursty(clean_tiny: Path) -> None:
    fraud = pl.read_parquet(clean_tiny / "truth/reward_fraud/*.parquet")
    farmed = fraud.filter(pl.col("kind") == "scan_farming")
    assert farmed.height > 0 and farmed["source_check_id"].is_null().all()
    labels = pl.read_parquet(clean_tiny / "truth/scan_labels/*.parquet")
    lab = labels.filter(pl.col("label") == "farmed")
    assert set(lab["scan_id"]) == set(farmed["event_id"])
    assert (lab["activated_distributor"] == lab["selling_distributor"]).all()
    scans = _landing(clean_tiny, "code/product_scans").with_columns(
        pl.col("scan_time").str.to_datetime()
    )
    bursts = (
        scans.join(farmed, left_on="scan_id", right_on="event_id")
        .group_by("consumer_id", "event_date")
        .agg(
            n=pl.len(),
            minutes=(pl.col("scan_time").max() - pl.col("scan_time").min()).dt.total_minutes(),
            spread=pl.max_horizontal(
                pl.col("lat").cast(pl.Float64).max() - pl.col("lat").cast(pl.Float64).min(),
                pl.col("lon").cast(pl.Float64).max() - pl.col("lon").cast(pl.Float64).min(),
            ),
        )
    )
    assert bursts["n"].min() >= 3 and bursts["minutes"].max() <= 60  # careful ones: 3-10
    assert bursts["spread"].max() < 0.005
    # every farmed unit is scanned once only: codes nobody else scanned
    codes = scans.filter(pl.col("scan_id").is_in(farmed["event_id"].implode()))["code"]
    assert scans.filter(pl.col("code").is_in(codes.implode())).height == codes.len()
    # each product scan is followed 20-90 s later by the account scanning the store's code
    visits = _landing(clean_tiny, "code/store_scans").with_columns(
        pl.col("scan_time").str.to_datetime()
    )
    farm = scans.join(farmed, left_on="scan_id", right_on="event_id").sort("scan_time")
    linked = farm.join_asof(
        visits.sort("scan_time").select("consumer_id", "store_code", t="scan_time"),
        left_on="scan_time",
        right_on="t",
        by="consumer_id",
        strategy="forward",
        check_sortedness=False,
    )
    lag = (linked["t"] - linked["scan_time"]).dt.total_seconds()
    assert (lag >= 0).all() and (lag <= 90).all()
    assert (linked["store_code"] == linked["store_code_right"]).all()


def _programmes():
    from bclake.core.incentives import load_programmes
    from bclake.core.settings import DEFAULT_INCENTIVES

    return load_programmes(DEFAULT_INCENTIVES)


def _dms_evidence(home: Path) -> pl.DataFrame:
    """The DMS view's evidence rebuilt from the exports alone (the YAML header's definitions)."""
    from bclake.core.codes import signature_ok

    invoices = _landing(home, "erp/invoices")
    purchases = invoices.select(
        evidence=pl.lit("distributor_purchases"),
        payee_code=pl.col("经销商编码"),
        day=pl.col("开票日期").str.to_date(),
        events=pl.lit(0),
        basis=pl.col("金额").cast(pl.Float64),
    )
    lines = (
        _landing(home, "dms/store_orders")
        .explode("lines")
        .unnest("lines")
        .filter(pl.col("qtyDelivered") > 0)
    )
    store_purchases = lines.select(
        evidence=pl.lit("store_purchases"),
        payee_code="storeCode",
        day=pl.col("deliveryDate").str.to_date(),
        events=pl.lit(0),
        basis="amount",
    )
    stores = _landing(home, "dms/stores")
    first = (
        lines.group_by("storeCode")
        .agg(day=pl.col("deliveryDate").str.to_date().min(), dist=pl.col("distributorCode").first())
        .join(stores, on="storeCode")
        .filter((pl.col("day") - pl.col("onboardDate").str.to_date()).dt.total_days() <= 90)
        .select(
            evidence=pl.lit("new_store_first_order"),
            payee_code="dist",
            day="day",
            events=pl.lit(1),
            basis=pl.lit(0.0),
        )
    )
    checks = _landing(home, "dms/display_checks").filter("compliant", pl.col("score") >= 75)
    display = checks.select(
        evidence=pl.lit("display_pass"),
        payee_code="storeCode",
        day=pl.col("checkDate").str.to_date(),
        events=pl.lit(1),
        basis=pl.lit(0.0),
    )
    scans = _landing(home, "code/product_scans").with_columns(
        t=pl.col("scan_time").str.to_datetime(),
        body=pl.col("code").str.slice(0, 13).cast(pl.Int64),
    )
    firsts = (
        scans.filter(signature_ok(scans["code"]))
        .sort("t", "scan_id")
        .unique("code", keep="first", maintain_order=True)
        .with_columns(serial=pl.col("body") % 10**10)
    )
    cases = _landing(home, "code/case_activations").select(
        "sku_code",
        serial=pl.col("first_serial").cast(pl.Int64),
        last=pl.col("last_serial").cast(pl.Int64),
        activated="distributor_code",
    )
    firsts = (
        firsts.sort("serial")
        .join_asof(cases.sort("serial"), on="serial", by="sku_code", check_sortedness=False)
        .filter(pl.col("serial") <= pl.col("last"))
    )
    visits = _landing(home, "code/store_scans").select(
        "consumer_id", "store_code", t_store=pl.col("scan_time").str.to_datetime()
    )
    linked = (
        firsts.sort("t")
        .join_asof(
            visits.sort("t_store", "store_code"),
            left_on="t",
            right_on="t_store",
            by="consumer_id",
            strategy="forward",
            tolerance=timedelta(seconds=600),
            check_sortedness=False,
        )
        .filter(pl.col("store_code").is_not_null())
    )
    consent = _landing(home, "cdp/consumers").select(
        consumer_id="consumerId", consent=pl.col("consents").struct.field("marketing")
    )
    verified = (
        linked.join(stores.select(store_code="storeCode", dist="distributorCode"), on="store_code")
        .join(consent.unique("consumer_id"), on="consumer_id")
        .filter(pl.col("activated") == pl.col("dist"), "consent")
        .select(
            evidence=pl.lit("verified_scan"),
            payee_code="store_code",
            day=pl.col("t").dt.date(),
            events=pl.lit(1),
            basis=pl.lit(0.0),
        )
    )
    frames = [purchases, store_purchases, first, display, verified]
    schema = {"events": pl.Int64, "basis": pl.Float64}
    return pl.concat([f.cast(schema) for f in frames])


def test_rebates_reconcile_with_the_dms_view_but_for_labelled_errors(clean_tiny: Path) -> None:
    from bclake.core.incentives import earned
    from bclake.simulator.incentives import period_end, periods

    programmes = _programmes()
    paid = _landing(clean_tiny, "dms/rebates")
    assert paid["rebateId"].str.contains(r"^RB\d{6,}$").all() and paid["rebateId"].is_unique().all()
    assert (paid["amount"] > 0).all()
    errors = pl.read_parquet(clean_tiny / "truth/rebate_payment_errors/*.parquet")
    assert set(errors["kind"]) == {"wrong_amount", "not_paid", "unexplained"}
    end = date(2024, 1, 1) + timedelta(days=get_scale("tiny").n_days - 1)
    due = earned(programmes, _dms_evidence(clean_tiny))
    pay = {
        (p.id, q): period_end(q, p.period) + timedelta(days=p.pay_after_days)
        for p in programmes.programmes
        for q in periods(date(2024, 1, 1), end, p.period)
    }
    due = due.with_columns(
        paid_date=pl.struct("programme_id", "period_start").map_elements(
            lambda r: pay[(r["programme_id"], r["period_start"])], return_dtype=pl.Date
        )
    ).filter(pl.col("amount") > 0, pl.col("paid_date") <= end)
    key = ["programme_id", "payee_code", "period_start"]
    rebates = paid.select(
        rebate_id="rebateId",
        programme_id="programmeId",
        payee_code="payeeCode",
        period_start=pl.col("periodStart").str.to_date(),
        paid_date=pl.col("paidDate").str.to_date(),
        amount="amount",
    )
    explained = rebates.join(
        errors.filter(pl.col("kind") == "unexplained").select("rebate_id"),
        on="rebate_id",
        how="anti",
    )
    assert explained.select(key).is_unique().all()
    both = due.join(explained, on=key, how="full", suffix="_paid", coalesce=True)
    missing = both.filter(pl.col("rebate_id").is_null())
    assert set(missing.select(key).iter_rows()) == set(
        errors.filter(pl.col("kind") == "not_paid").select(key).iter_rows()
    )
    assert both.filter(pl.col("amount").is_null()).is_empty()  # nothing paid that was not due
    matched = both.filter(pl.col("rebate_id").is_not_null())
    assert (matched["paid_date"] == matched["paid_date_paid"]).all()
    off = matched.filter((pl.col("amount") - pl.col("amount_paid")).abs() > 0.011)
    wrong = errors.filter(pl.col("kind") == "wrong_amount")
    assert set(off["rebate_id"]) == set(wrong["rebate_id"])
    ratio = wrong["paid_amount"] / wrong["due_amount"]
    assert ((ratio >= 0.49) & (ratio <= 1.51) & ((ratio - 1).abs() >= 0.04)).all()


def test_truth_earns_less_than_the_dms_pays_for_fraud(clean_tiny: Path) -> None:
    programmes = _programmes()
    truth = pl.read_parquet(clean_tiny / "truth/incentive_earned/*.parquet")
    assert set(truth["programme_id"]) == {p.id for p in programmes.programmes}
    assert truth.select("programme_id", "payee_code", "period_start").is_unique().all()
    end = date(2024, 1, 1) + timedelta(days=get_scale("tiny").n_days - 1)
    assert truth["period_start"].max() <= end
    paid = _landing(clean_tiny, "dms/rebates").group_by("programmeId").agg(pl.col("amount").sum())
    paid = dict(paid.iter_rows())
    got = dict(truth.group_by("programme_id").agg(pl.col("amount").sum()).iter_rows())
    # farmed scans and reused photos are paid by the DMS, not earned in truth
    assert got["SS"] < paid["SS"] and got["SD"] < paid["SD"]


def test_store_orders_say_how_they_were_placed(tiny_home: Path) -> None:
    """The DMS records each order's source, one per order (all its lines), and the
    suggested order is rolled out: more of the last month's orders come from it."""
    docs = []
    for path in sorted((tiny_home / "landing" / "dms" / "store_orders").glob("*.ndjson")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:  # a line the simulator damaged on purpose
                continue
            if isinstance(doc, dict) and "orderSource" in doc:
                docs.append((doc["orderId"], str(doc.get("orderDate")), doc["orderSource"]))
    orders = pl.DataFrame(docs, schema=["order_id", "order_date", "source"], orient="row")
    assert {"suggested", "manual", "rep"} <= set(orders["source"].drop_nulls().unique())
    months = (
        orders.unique("order_id")
        .with_columns(month=pl.col("order_date").str.slice(0, 7))
        .group_by("month")
        .agg((pl.col("source") == "suggested").mean().alias("share"))
        .sort("month")
    )
    assert 0.2 < months["share"][0] < months["share"][-1] < 0.95
