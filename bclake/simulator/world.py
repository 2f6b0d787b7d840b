"""The entities of the simulated world and their latent traits.

Geography, products, plants and DCs, distributors, stores, consumers and
community groups. Every latent trait that drives behaviour (store engagement,
a distributor's habit of diverting stock, a consumer's value and price
sensitivity) lives in these frames too; exports drop those columns and the
truth keeps them. Everything is drawn from one seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from bclake.core.settings import DBT_PROJECT_DIR
from bclake.simulator.config import ScaleConfig

# public reference geography, shared with the warehouse (dbt seed)
CITIES_CSV = DBT_PROJECT_DIR / "seeds" / "geo_cities.csv"
REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
TIER_WEIGHT = {1: 6.0, 2: 3.0, 3: 1.0, 4: 0.45}

# category -> (names, list price range in yuan, case pack, shelf life days)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, float], int, int]] = {
    "饮料": (("柠檬茶", "乌龙茶", "气泡水", "椰汁", "运动饮料", "橙汁"), (2.5, 5.0), 24, 270),
    "乳品": (("纯牛奶", "酸奶", "早餐奶", "儿童奶", "高钙奶"), (3.0, 8.0), 12, 180),
    "零食": (("海苔", "坚果", "薯片", "饼干", "肉脯", "果干"), (5.0, 18.0), 20, 300),
    "礼盒": (("坚果礼盒", "牛奶礼盒", "饮料礼盒", "糕点礼盒"), (45.0, 120.0), 6, 360),
    "调味品": (("酱油", "香醋", "蚝油", "火锅底料"), (6.0, 20.0), 12, 540),
}
SIZES = ("500ml", "1L", "250g", "家庭装", "小包装", "组合装")
CHANNELS = {  # channel -> (share of stores, base daily units per SKU)
    "夫妻店": (0.40, 0.25),
    "便利店": (0.25, 0.35),
    "超市": (0.15, 0.9),
    "餐饮": (0.12, 0.2),
    "母婴店": (0.08, 0.3),
}
SIZE_CLASSES = {"S": (0.5, 0.7), "M": (0.35, 1.3), "L": (0.15, 2.4)}
SCENARIOS = ("家庭宝妈", "白领", "学生", "银发", "大众")
SCENARIO_P = (0.2, 0.25, 0.15, 0.1, 0.3)
# scenario -> category it over-indexes on
SCENARIO_CATEGORY = {"家庭宝妈": "乳品", "白领": "饮料", "学生": "零食", "银发": "调味品"}
PLANTS = (("P01", "苏州工厂", "苏州"), ("P02", "佛山工厂", "佛山"), ("P03", "成都工厂", "成都"))


def plant_index(cat_idx: np.ndarray) -> np.ndarray:
    """The plant (index into `PLANTS`) that makes each category in `cat_idx` (indices
    into `World.categories`): category `c` is made at plant `c % len(PLANTS)`."""
    return cat_idx % len(PLANTS)


@dataclass
class World:
    """Entity tables (lake column names plus latent columns) shared by every generator."""

    cities: pl.DataFrame
    products: pl.DataFrame
    plants: pl.DataFrame
    warehouses: pl.DataFrame
    distributors: pl.DataFrame
    stores: pl.DataFrame
    consumers: pl.DataFrame
    groups: pl.DataFrame
    region_affinity: np.ndarray  # regions x categories

    @property
    def categories(self) -> list[str]:
        return list(CATEGORIES)

    @property
    def provinces(self) -> list[str]:
        return sorted(self.cities["province"].unique().to_list())


def load_cities(n_regions: int) -> pl.DataFrame:
    cities = pl.read_csv(CITIES_CSV, schema_overrides={"adcode": pl.String})
    return cities.filter(pl.col("region").is_in(REGIONS[:n_regions]))


def build_world(cfg: ScaleConfig, rng: np.random.Generator) -> World:
    cities = load_cities(cfg.n_regions)
    products = _products(cfg, rng)
    plants, warehouses = _supply_sites(cfg, cities)
    distributors, stores = _channel(cfg, cities, rng)
    consumers = _consumers(cfg, stores, rng)
    groups = _groups(cfg, stores, rng)
    affinity = rng.lognormal(0.0, 0.3, size=(len(REGIONS), len(CATEGORIES)))
    return World(
        cities, products, plants, warehouses, distributors, stores, consumers, groups, affinity
    )


def _products(cfg: ScaleConfig, rng: np.random.Generator) -> pl.DataFrame:
    cats = list(CATEGORIES)
    weights = np.array([0.3, 0.25, 0.25, 0.08, 0.12])
    rows = []
    for i in range(cfg.n_skus):
        cat = cats[i % len(cats)] if i < len(cats) else cats[rng.choice(len(cats), p=weights)]
        names, (lo, hi), case_pack, shelf_life = CATEGORIES[cat]
        price = round(float(rng.uniform(lo, hi)), 1)
        new = i >= len(cats) and rng.random() < 0.15  # launched inside the window
        launch = (
            cfg.start + timedelta(days=int(rng.integers(60, cfg.n_days - 120)))
            if new
            else cfg.start - timedelta(days=int(rng.integers(200, 2000)))
        )
        rows.append(
            {
                "sku_code": f"SKU{i + 1:04d}",
                "sku_name": f"{names[i % len(names)]} {SIZES[(i // len(names)) % len(SIZES)]}",
                "category": cat,
                "case_pack": case_pack,
                "list_price": price,
                "retail_price": round(price * 1.35, 1),
                "launch_date": launch,
                "shelf_life_days": shelf_life,
                # latent: a few hits, a long tail; new products either take off or fade
                "popularity": float(rng.lognormal(0.0, 0.8)),
                "launch_success": bool(rng.random() < 0.6) if new else True,
            }
        )
    return pl.DataFrame(rows)


def _supply_sites(cfg: ScaleConfig, cities: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    plants = pl.DataFrame(
        [{"plant_code": c, "plant_name": n, "city": city} for c, n, city in PLANTS]
    )
    regions = [r for r in REGIONS[: cfg.n_regions]]
    hubs = cities.sort("tier", "adcode").group_by("region", maintain_order=True).first()
    hub_city = dict(zip(hubs["region"], hubs["city"], strict=True))
    warehouses = pl.DataFrame(
        [
            {
                "warehouse_code": f"DC{i + 1:02d}",
                "warehouse_name": f"{r}区域仓",
                "region": r,
                "city": hub_city[r],
                "warehouse_type": "DC",
            }
            for i, r in enumerate(regions)
        ]
    )
    return plants, warehouses


def seat_cities(store_city: pl.DataFrame, province: str, k: int) -> list[str]:
    """Seats of a province's `k` distributors: its cities by store count, most first.

    Distributor j sits in the j-th city (ties by adcode; wrapping round when the
    province has fewer cities with stores than distributors). No random draw.
    """
    ranked = (
        store_city.filter(pl.col("province") == province)
        .group_by("city", "adcode")
        .len()
        .sort(["len", "adcode"], descending=[True, False])
    )["city"].to_list()
    return [ranked[j % len(ranked)] for j in range(k)]


def _channel(
    cfg: ScaleConfig, cities: pl.DataFrame, rng: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame]:
    weights = np.array([TIER_WEIGHT[t] for t in cities["tier"]])
    city_idx = rng.choice(len(cities), size=cfg.n_stores, p=weights / weights.sum())
    city_idx.sort()
    store_city = cities[city_idx]

    # distributors: one or more per province, sized by the stores there; distributor j of
    # a province sits in its j-th city by store count (`seat_cities`, no random draw)
    provinces = store_city.group_by("province", maintain_order=True).agg(
        pl.len().alias("n"), pl.first("region")
    )
    seat_lat = dict(zip(cities["city"], cities["lat"], strict=True))
    seat_lon = dict(zip(cities["city"], cities["lon"], strict=True))
    dist_rows, prov_dists = [], {}
    for prov in provinces.iter_rows(named=True):
        k = max(1, round(prov["n"] / cfg.stores_per_distributor))
        seats = seat_cities(store_city, prov["province"], k)
        codes = []
        for seat in seats:
            code = f"D{len(dist_rows) + 1:04d}"
            codes.append(code)
            dist_rows.append(
                {
                    "distributor_code": code,
                    "distributor_name": f"{prov['province']}{len(codes)}号经销商",
                    "tier": str(rng.choice(["一级", "二级"], p=[0.6, 0.4])),
                    "region": prov["region"],
                    "province": prov["province"],
                    "city": seat,
                    # latent: the seat's coordinates (not in the DMS export) and behaviour
                    "lat": seat_lat[seat],
                    "lon": seat_lon[seat],
                    "pay_delay_mean": float(rng.choice([20.0, 35.0, 60.0], p=[0.5, 0.35, 0.15])),
                }
            )
        prov_dists[prov["province"]] = codes
    # a fixed share of distributors divert stock (at least one when the share is positive)
    n_div = max(1, round(cfg.diverter_share * len(dist_rows))) if cfg.diverter_share > 0 else 0
    diverters = set(rng.choice(len(dist_rows), size=n_div, replace=False).tolist())
    distributors = pl.DataFrame(dist_rows).with_columns(
        diverts=pl.Series([i in diverters for i in range(len(dist_rows))])
    )

    channels = list(CHANNELS)
    ch_p = np.array([CHANNELS[c][0] for c in channels])
    sizes = list(SIZE_CLASSES)
    sz_p = np.array([SIZE_CLASSES[s][0] for s in sizes])
    channel = rng.choice(len(channels), size=cfg.n_stores, p=ch_p)
    size = rng.choice(len(sizes), size=cfg.n_stores, p=sz_p)
    onboard_offset = np.where(
        rng.random(cfg.n_stores) < 0.12,
        rng.integers(30, max(31, cfg.n_days - 90), size=cfg.n_stores),
        -rng.integers(30, 1500, size=cfg.n_stores),
    )
    engagement = rng.beta(2.0, 2.0, size=cfg.n_stores)  # latent: how well a store executes
    lat = store_city["lat"].to_numpy() + rng.normal(0, 0.04, cfg.n_stores)
    lon = store_city["lon"].to_numpy() + rng.normal(0, 0.04, cfg.n_stores)
    dist_of = [prov_dists[p][int(rng.integers(len(prov_dists[p])))] for p in store_city["province"]]
    stores = pl.DataFrame(
        {
            "store_code": [f"S{i + 1:06d}" for i in range(cfg.n_stores)],
            "store_name": [
                f"{c}{channels[channel[i]]}{i + 1}" for i, c in enumerate(store_city["city"])
            ],
            "channel_type": [channels[c] for c in channel],
            "size_class": [sizes[s] for s in size],
            "region": store_city["region"],
            "province": store_city["province"],
            "city": store_city["city"],
            "lat": np.round(lat, 5),
            "lon": np.round(lon, 5),
            "distributor_code": dist_of,
            "onboard_date": [cfg.start + timedelta(days=int(o)) for o in onboard_offset],
            "has_pos": rng.random(cfg.n_stores) < cfg.pos_share,
            "mini_program_active": rng.random(cfg.n_stores) < 0.25 + 0.6 * engagement,
            "is_partner": rng.random(cfg.n_stores) < 0.1 * (1 + engagement),
            # latent
            "base_rate": [
                CHANNELS[channels[c]][1] * SIZE_CLASSES[sizes[s]][1]
                for c, s in zip(channel, size, strict=True)
            ],
            "tier": store_city["tier"],
            "engagement": engagement,
            "satisfaction": np.clip(
                3.2 + 1.6 * engagement + rng.normal(0, 0.3, cfg.n_stores), 1, 5
            ),
        }
    )
    return distributors, stores


def _consumers(cfg: ScaleConfig, stores: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """A local pool of shoppers per store, contiguous by store, with latent traits."""
    n = cfg.n_stores * cfg.consumers_per_store
    home = np.repeat(np.arange(cfg.n_stores), cfg.consumers_per_store)
    scenario = rng.choice(len(SCENARIOS), size=n, p=SCENARIO_P)
    value = rng.lognormal(0.0, 0.7, size=n)
    born = np.where(
        np.array(SCENARIOS)[scenario] == "学生",
        rng.integers(1998, 2008, n),
        np.where(
            np.array(SCENARIOS)[scenario] == "银发",
            rng.integers(1945, 1965, n),
            rng.integers(1965, 2000, n),
        ),
    )
    phone_prefix = rng.choice(
        [
            130,
            131,
            132,
            135,
            136,
            137,
            138,
            139,
            150,
            151,
            152,
            158,
            159,
            177,
            180,
            181,
            186,
            187,
            188,
            189,
            199,
        ],
        size=n,
    )
    phone = phone_prefix.astype(np.int64) * 10**8 + rng.integers(0, 10**8, size=n)
    return pl.DataFrame(
        {
            "consumer_id": "C" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(9),
            "home_store": home.astype(np.int32),
            "city": stores["city"].gather(home),
            "phone": pl.Series(phone).cast(pl.String),
            "gender": rng.choice(["F", "M"], size=n, p=[0.58, 0.42]),
            "birth_year": born,
            # latent traits
            "scenario": np.array(SCENARIOS)[scenario],
            "value": value,
            "price_sensitivity": rng.beta(2.0, 3.0, size=n),
            "social": rng.beta(1.5, 4.0, size=n),
            "scan_propensity": value * rng.lognormal(0.0, 0.5, size=n),
            "consent_marketing": rng.random(n) < 0.72,
            "consent_profile": rng.random(n) < 0.85,
        }
    )


def _groups(cfg: ScaleConfig, stores: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Private-domain community groups run by engaged stores (one per store at most)."""
    eng = stores["engagement"].to_numpy()
    has = rng.random(len(stores)) < 0.15 + 0.5 * eng
    idx = np.nonzero(has)[0]
    created = rng.integers(-400, cfg.n_days - 60, size=len(idx))
    return pl.DataFrame(
        {
            "group_id": [f"G{i + 1:06d}" for i in range(len(idx))],
            "store_idx": idx.astype(np.int32),
            "store_code": stores["store_code"].gather(idx),
            "group_name": [f"{stores['store_name'][int(i)]}福利群" for i in idx],
            "created_date": [cfg.start + timedelta(days=int(c)) for c in created],
        }
    )
