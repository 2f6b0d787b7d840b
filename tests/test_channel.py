"""Channel optimisation (渠道优化) on hand-made stores, distributors and cities: the
inefficiency rule and its actions, the peer comparison, the white-space ranking, the
coverage plan's N, bad coordinates, the configuration's errors and the evaluation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from bclake.core.channel import ChannelConfigError, load_channel
from bclake.core.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from bclake.evaluation.channel import evaluate_channel, recall_ndcg, score_inefficient
from bclake.ml.channel import (
    ChannelInputs,
    area_cells,
    coverage_plan,
    outside_china,
    plan_channel,
)

AS_OF = date(2025, 6, 30)
WEEKS = 26.0


def _store(code: str, **over: object) -> dict:
    """A profitable store in a tier-2 city (yuan over a 26-week window) unless `over`."""
    row = {
        "store_code": code,
        "store_name": f"店 {code}",
        "distributor_code": "D0001",
        "distributor_known": True,
        "channel_type": "便利店",
        "size_class": "M",
        "region": "华东",
        "province": "浙江",
        "city": "杭州",
        "adcode": "330100",
        "city_tier": 2,
        "lat": 30.27,
        "lon": 120.15,
        "window_start": date(2025, 1, 1),
        "window_end": AS_OF,
        "weeks_active": WEEKS,
        "sell_in_units": 2600,
        "orders": 26,
        "revenue": 26000.0,
        "gross_margin": 11700.0,
        "drops": 26,
        "avg_drop_units": 100.0,
        "km_to_distributor": 10.0,
        "road_km": 13.5,
        "km_imputed": False,
        "cost_per_drop": 55.55,
        "delivery_cost": 1444.3,
        "visits": 6,
        "cost_per_visit": 220.0,
        "visit_cost": 1320.0,
        "rebates": 200.0,
        "promo_cost": 300.0,
        "revenue_recent": 13000.0,
        "revenue_trend_per_week": 0.0,
        "nearest_distributor_code": "D0002",
        "nearest_distributor_road_km": 60.0,
    }
    row.update(over)
    contribution = (
        row["gross_margin"]
        - row["delivery_cost"]
        - row["visit_cost"]
        - row["rebates"]
        - row["promo_cost"]
    )
    row["contribution"] = over.get("contribution", contribution)
    row["contribution_recent"] = over.get("contribution_recent", row["contribution"] / 2)
    row["contribution_per_week"] = row["contribution"] / row["weeks_active"]
    row["contribution_margin"] = row["contribution"] / row["revenue"] if row["revenue"] else None
    row["cost_recent"] = 0.0
    return row


def _distributor(code: str, **over: object) -> dict:
    row = {
        "distributor_code": code,
        "distributor_name": f"经销商 {code}",
        "tier": "一级",
        "region": "华东",
        "province": "浙江",
        "city": "杭州",
        "city_known": True,
        "seat_lat": 30.27,
        "seat_lon": 120.15,
        "stores": 5,
        "shipments": 26,
        "store_drops": 130,
        "avg_shipment_units": 500.0,
        "road_km": 50.0,
        "revenue": 300000.0,
        "gross_margin": 135000.0,
        "delivery_cost": 20000.0,
        "visit_cost": 10000.0,
        "rebates": 5000.0,
        "promo_cost": 2000.0,
        "contribution": 98000.0,
        "contribution_recent": 49000.0,
        "contribution_margin": 0.33,
        "revenue_trend_per_week": 0.0,
        "window_end": AS_OF,
    }
    row.update(over)
    return row


def _city(adcode: str, city: str, tier: int, **over: object) -> dict:
    row = {
        "adcode": adcode,
        "city": city,
        "province": "浙江",
        "region": "华东",
        "tier": tier,
        "lat": 30.27,
        "lon": 120.15,
        "window_start": date(2025, 1, 1),
        "window_end": AS_OF,
        "consumers": 0,
        "scans": 0,
        "scan_consumers": 0,
        "scans_week": 0.0,
        "stores": 0,
        "pos_stores": 0,
        "sell_in_units_week": 0.0,
        "sell_through_units_week": 0.0,
        "nearest_store_km": 50.0,
        "neighbour_stores": 0,
        "neighbour_sell_in_units_week": 0.0,
        "brand_share": 0.2,
        "competitor_price_index": 1.0,
    }
    row.update(over)
    return row


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None)


@pytest.fixture
def config():
    return load_channel(PROJECT_ROOT / "config" / "channel.yaml")


def _areas() -> pl.DataFrame:
    """Four tier-2 cities with stores (each serving 100 units a week, 30 consumers a store)
    and two without: 湖州 with 40 resident consumers and scans, 衢州 with nothing."""
    rows = [
        _city(
            f"33{i:02d}00",
            name,
            2,
            stores=2,
            consumers=60,
            scans=300,
            scan_consumers=50,
            sell_in_units_week=100.0 + i,
            lat=30.0 + i / 10,
            lon=120.0 + i / 10,
        )
        for i, name in enumerate(["杭州", "宁波", "温州", "绍兴"], start=1)
    ]
    rows.append(
        _city(
            "330500", "湖州", 2, consumers=40, scans=200, scan_consumers=35, lat=30.87, lon=120.09
        )
    )
    rows.append(_city("330800", "衢州", 2, lat=28.97, lon=118.86))
    return _frame(rows)


def _stores_for_areas() -> pl.DataFrame:
    rows = []
    for i in range(1, 5):
        for j in range(2):
            rows.append(
                _store(
                    f"S00{i}00{j}",
                    adcode=f"33{i:02d}00",
                    lat=30.0 + i / 10,
                    lon=120.0 + i / 10,
                    sell_in_units=1300 + 26 * i,
                )
            )
    return _frame(rows)


def _plan(stores: pl.DataFrame, config, dists: pl.DataFrame | None = None):
    dists = (
        dists
        if dists is not None
        else _frame(
            [
                _distributor("D0001"),
                _distributor("D0002", seat_lat=29.0, seat_lon=118.9, city="衢州"),
            ]
        )
    )
    return plan_channel(ChannelInputs(stores, dists, _areas()), config, AS_OF)


def test_an_unprofitable_store_is_flagged_with_its_reason_and_action(config) -> None:
    stores = _frame(
        [
            _store("S000001"),
            # far from its distributor, many small drops: moving to D0002 fixes it
            _store(
                "S000002",
                gross_margin=3000.0,
                delivery_cost=5200.0,
                road_km=120.0,
                nearest_distributor_road_km=20.0,
                drops=40,
                avg_drop_units=5.0,
            ),
            # tiny sales, heavy rebates: nothing but exit fixes it
            _store(
                "S000003",
                gross_margin=500.0,
                revenue=1100.0,
                delivery_cost=300.0,
                visit_cost=300.0,
                rebates=3000.0,
                promo_cost=0.0,
            ),
            # a loss that has turned round: scored, not flagged
            _store(
                "S000004",
                gross_margin=2500.0,
                contribution_recent=200.0,
                revenue_trend_per_week=0.05,
            ),
        ]
    )
    plan = _plan(stores, config)
    flagged = {r["code"]: r for r in plan.inefficient.iter_rows(named=True)}
    assert set(flagged) == {"S000002", "S000003"}
    moved = flagged["S000002"]
    assert moved["rule"] == "loss"
    assert moved["action"] == "move_distributor"
    assert moved["move_to_distributor"] == "D0002"
    assert "改由更近的经销商配送 D0002" in moved["reason_zh"]
    assert "move to a nearer distributor D0002" in moved["reason_en"]
    assert "contribution -4020 yuan = margin 3000" in moved["reason_en"]  # the inputs
    assert flagged["S000003"]["action"] == "exit"
    assert "返利 3000" in flagged["S000003"]["reason_zh"]
    scores = plan.scores.filter(pl.col("entity_type") == "store")
    assert scores.height == 4
    assert scores.filter(pl.col("code") == "S000004")["rule"].item() == "recovering"


def test_a_peer_laggard_needs_the_bottom_of_its_peers_a_thin_margin_and_a_decline(
    config,
) -> None:
    # ten peers (tier 2 x 便利店); S000010 is the weakest, earns 2% of revenue, falls 3%/week
    rows = [_store(f"S0000{i:02d}", gross_margin=11700.0 + 100 * i) for i in range(1, 10)]
    weak = dict(gross_margin=3300.0, revenue_trend_per_week=-0.03)
    rows.append(_store("S000010", **weak))
    # the same numbers but steady: not a laggard
    rows.append(_store("S000011", **{**weak, "revenue_trend_per_week": 0.0}))
    plan = _plan(_frame(rows), config)
    flagged = plan.inefficient.filter(pl.col("entity_type") == "store")
    assert flagged["code"].to_list() == ["S000010"]
    row = flagged.row(0, named=True)
    assert row["rule"] == "peer_laggard"
    assert row["peer_group"] == "2 x 便利店"
    assert row["action"] in ("merge_routes", "lower_visit_frequency")
    assert "同类 (2 x 便利店)" in row["reason_zh"]


def test_peer_groups_fall_back_to_the_tier_when_too_small(config) -> None:
    rows = [_store(f"S0000{i:02d}") for i in range(1, 7)]
    rows.append(_store("S000099", channel_type="商超"))  # alone in its channel
    scores = _plan(_frame(rows), config).scores.filter(pl.col("entity_type") == "store")
    lone = scores.filter(pl.col("code") == "S000099").row(0, named=True)
    assert lone["peer_group"] == "2"
    assert lone["peers"] == 7


def test_an_unprofitable_distributor_is_flagged(config) -> None:
    dists = _frame(
        [
            _distributor("D0001"),
            _distributor(
                "D0002",
                contribution=-30000.0,
                contribution_recent=-15000.0,
                contribution_margin=-0.1,
                delivery_cost=80000.0,
            ),
        ]
    )
    plan = _plan(_frame([_store("S000001")]), config, dists)
    flagged = plan.inefficient.filter(pl.col("entity_type") == "distributor")
    assert flagged["code"].to_list() == ["D0002"]
    assert flagged["action"].item() == "merge_routes"  # half of 80000 covers the loss


def test_white_space_ranks_an_uncovered_high_signal_city_first(config) -> None:
    plan = _plan(_stores_for_areas(), config)
    white = plan.white_space
    assert white["rank"].to_list() == list(range(1, white.height + 1))
    top = white.row(0, named=True)
    assert top["city"] == "湖州"
    assert top["resident_units_week"] > 0
    # the uncovered city with no signal ranks second: the tier's demand alone
    assert white.row(1, named=True)["city"] == "衢州"
    assert white.row(0, named=True)["confidence"] > white.row(1, named=True)["confidence"]
    assert top["nearest_distributor_code"] == "D0001"
    assert "常住消费者" in top["reason_zh"]
    cells = plan.area_cells
    assert set(cells["kind"]) == {"city", "store"}
    assert cells["boundary_geojson"].str.starts_with('{"type": "Polygon"').all()


def test_the_coverage_plan_respects_n(config) -> None:
    plan = _plan(_stores_for_areas(), config)
    white = plan.white_space
    laid_out = plan.coverage_plan
    assert laid_out.filter("in_plan").height <= config.white_space.new_outlets
    assert laid_out["in_plan"].to_list() == [
        o <= config.white_space.new_outlets for o in laid_out["outlet"]
    ]
    longest = coverage_plan(white, _stores_for_areas(), 50)
    for n in (0, 1, 3, 7):
        cov = coverage_plan(white, _stores_for_areas(), n)
        assert cov.height <= n
        assert cov["outlet"].to_list() == list(range(1, cov.height + 1))
        # the plan for n is the first n outlets of a longer plan: the page's slider cuts it
        assert cov.equals(longest.head(n))
    cov = coverage_plan(white, _stores_for_areas(), 3)
    assert cov["city"][0] == "湖州"
    assert (cov["expected_incremental_units_week"] > 0).all()
    assert cov["serving_distributor_code"].null_count() == 0


def test_bad_coordinates_are_flagged(config) -> None:
    # 东海 (the sea off Zhejiang), Tokyo, Hangzhou
    out = outside_china([29.0, 35.68, 30.27], [124.5, 139.69, 120.15])
    assert out.tolist() == [True, True, False]
    stores = _frame(
        [
            _store("S000001"),
            _store("S000002", lat=29.0, lon=124.5),
            _store("S000003", lat=None, lon=None, km_imputed=True),
        ]
    )
    notes = _plan(stores, config).notes
    issues = dict(zip(notes["issue"], notes["subject"], strict=True))
    assert issues["outside_china_outline"] == "store S000002"
    assert issues["distance_imputed"] == "1 stores"


def test_config_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "channel.yaml").read_text(encoding="utf-8"))
    bad = {**raw, "inefficiency": {**raw["inefficiency"], "peer_percentile": 0.7}}
    path = tmp_path / "channel.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ChannelConfigError, match=r"channel.yaml: inefficiency.peer_percentile"):
        load_channel(path)
    bad = {**raw, "costs": {**raw["costs"], "visit_cost": {5: 100.0}}}
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ChannelConfigError, match="visit_cost: city tiers are 1-4"):
        load_channel(path)
    path.write_text("version: 1\nwindow_week: 26\n", encoding="utf-8")
    with pytest.raises(ChannelConfigError, match="window_week: Extra inputs"):
        load_channel(path)
    path.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ChannelConfigError, match="expected a mapping"):
        load_channel(path)
    with pytest.raises(ChannelConfigError, match="cannot read"):
        load_channel(tmp_path / "missing.yaml")


def test_dbt_defaults_agree_with_the_shipped_file(config) -> None:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    for name, value in config.dbt_vars().items():
        assert project["vars"][name] == value, name


def _truth_areas() -> pl.DataFrame:
    codes = [f"C{i:02d}" for i in range(1, 11)]
    return pl.DataFrame(
        {
            "adcode": codes,
            "untapped_units_week": [100.0 - 10 * i for i in range(10)],
            "deserved_rank": list(range(1, 11)),
            "planted": [True] * 3 + [False] * 7,
        }
    )


def test_recall_and_ndcg_at_k() -> None:
    truth = _truth_areas()
    perfect = truth["adcode"].to_list()
    assert recall_ndcg(perfect, truth, 5) == (1.0, 1.0)
    reverse = perfect[::-1]
    recall, ndcg = recall_ndcg(reverse, truth, 5)
    assert recall == 0.0 and 0 < ndcg < 0.5
    swapped = [perfect[1], perfect[0], *perfect[2:]]
    recall, ndcg = recall_ndcg(swapped, truth, 5)
    assert recall == 1.0 and 0.95 < ndcg < 1.0


def test_inefficient_precision_recall_and_baseline() -> None:
    truth = pl.DataFrame(
        {
            "code": ["S1", "S2", "S3", "S4"],
            "unprofitable": [True, True, False, False],
            "deserved_action": ["exit", "merge_routes", "none", "none"],
        }
    )
    flagged = pl.DataFrame({"code": ["S1", "S3"], "action": ["exit", "exit"]})
    revenue = pl.DataFrame({"code": ["S1", "S2", "S3", "S4"], "revenue": [5.0, 1.0, 9.0, 7.0]})
    out = score_inefficient(flagged, truth, revenue)
    assert out["precision"] == 0.5 and out["recall"] == 0.5 and out["n"] == 2
    assert out["action_match"] == 1.0
    assert out["baseline"]["n"] == 1 and out["baseline"]["precision"] == 1.0  # S2, lowest


def test_evaluation_skips_without_truth_and_scores_with_it(tmp_path: Path) -> None:
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    db = tmp_path / "published.duckdb"
    assert "skipped" in evaluate_channel(truth_dir, db)
    areas = _truth_areas()
    areas.with_columns(
        city=pl.col("adcode"),
        province=pl.lit("p"),
        tier=pl.lit(2),
        population=1.0,
        income_index=1.0,
        potential_units_week=pl.col("untapped_units_week"),
        stores=pl.lit(0),
        true_coverage=0.0,
    ).write_parquet(truth_dir / "channel_areas.parquet")
    pl.DataFrame(
        {
            "entity_type": ["store", "store", "distributor"],
            "code": ["S1", "S2", "D1"],
            "contribution": [-5.0, 10.0, -1.0],
            "unprofitable": [True, False, True],
            "deserved_action": ["exit", "none", "merge_routes"],
        }
    ).write_parquet(truth_dir / "channel_economics.parquet")
    con = duckdb.connect(str(db))
    con.execute("create schema ml; create schema marts")
    con.execute(
        "create table ml.channel_white_space as select 'C0' || (i + 1) as adcode, i + 1 as rank "
        "from range(9) t(i)"
    )
    con.execute("insert into ml.channel_white_space values ('C10', 10)")
    con.execute(
        "create table ml.channel_inefficient as select * from (values "
        "('store', 'S1', 'exit'), ('distributor', 'D1', 'exit')) t(entity_type, code, action)"
    )
    con.execute(
        "create table marts.fct_store_economics as select * from (values ('S1', 1.0), "
        "('S2', 2.0)) t(store_code, revenue)"
    )
    con.execute(
        "create table marts.fct_distributor_economics as select 'D1' as distributor_code, "
        "1.0 as revenue"
    )
    con.execute(
        "create table marts.fct_area_demand_signals as select adcode, 2 as tier, 0 as stores "
        "from ml.channel_white_space"
    )
    con.close()
    out = evaluate_channel(truth_dir, db)
    ws = out["white_space"]
    assert ws["k"] == 5 and ws["recall_at_k"] == 1.0 and ws["ndcg_at_k"] == 1.0
    assert set(ws["baselines"]) == {"tier", "random"}
    stores = out["inefficient"]["stores"]
    assert stores["precision"] == 1.0 and stores["recall"] == 1.0 and stores["n"] == 1
    assert out["inefficient"]["distributors"]["action_match"] == 0.0


def test_two_cities_in_one_coarse_cell_keep_their_own_rows() -> None:
    """At a coarse H3 resolution two city seats share a cell; each keeps its own row (a
    reader scoped to one city's region must not see the other's numbers)."""
    white = pl.DataFrame(
        {
            "adcode": ["130100", "140100"],  # 石家庄, 太原: 170 km apart
            "lat": [38.04, 37.87],
            "lon": [114.51, 112.55],
            "est_untapped_units_week": [10.0, 90.0],
            "rank": [2, 1],
        }
    )
    stores = pl.DataFrame({"adcode": ["130100"], "lat": [38.05], "lon": [114.52]})
    cells = area_cells(white, stores, resolution=1)
    city = cells.filter(pl.col("kind") == "city")
    assert city["cell"].n_unique() == 1, "the test needs both seats in one cell"
    assert dict(zip(city["adcode"], city["est_untapped_units_week"], strict=True)) == {
        "130100": 10.0,
        "140100": 90.0,
    }
    assert cells.filter(pl.col("kind") == "store")["stores"].to_list() == [1]
