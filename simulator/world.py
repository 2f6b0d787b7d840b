"""The entities of the simulated world: geography, products, distributors and stores.

Everything is drawn from one seeded generator so the same seed builds the same world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from simulator.config import ScaleConfig

DATA_DIR = Path(__file__).parent / "data"
REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
TIER_WEIGHT = {1: 5.0, 2: 3.0, 3: 1.5, 4: 0.6}

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


@dataclass
class World:
    """Entity tables (lake column names) plus the arrays the dynamics need."""

    cities: pl.DataFrame
    products: pl.DataFrame
    distributors: pl.DataFrame
    stores: pl.DataFrame
    region_affinity: np.ndarray  # regions x categories

    @property
    def categories(self) -> list[str]:
        return list(CATEGORIES)


def load_cities(n_regions: int) -> pl.DataFrame:
    cities = pl.read_csv(DATA_DIR / "cities.csv")
    return cities.filter(pl.col("region").is_in(REGIONS[:n_regions]))


def build_world(cfg: ScaleConfig, rng: np.random.Generator) -> World:
    cities = load_cities(cfg.n_regions)
    products = _products(cfg, rng)
    distributors, stores = _channel(cfg, cities, rng)
    affinity = rng.lognormal(0.0, 0.3, size=(len(REGIONS), len(CATEGORIES)))
    return World(cities, products, distributors, stores, affinity)


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
                # latent popularity: a few hits, a long tail
                "popularity": float(rng.lognormal(0.0, 0.8)),
            }
        )
    return pl.DataFrame(rows)


def _channel(
    cfg: ScaleConfig, cities: pl.DataFrame, rng: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame]:
    weights = np.array([TIER_WEIGHT[t] for t in cities["tier"]])
    city_idx = rng.choice(len(cities), size=cfg.n_stores, p=weights / weights.sum())
    city_idx.sort()
    store_city = cities[city_idx]

    # distributors: one or more per province, sized by the stores there
    provinces = store_city.group_by("province", maintain_order=True).agg(
        pl.len().alias("n"), pl.first("region"), pl.first("city")
    )
    dist_rows, prov_dists = [], {}
    for prov in provinces.iter_rows(named=True):
        k = max(1, round(prov["n"] / cfg.stores_per_distributor))
        codes = []
        for _ in range(k):
            code = f"D{len(dist_rows) + 1:04d}"
            codes.append(code)
            dist_rows.append(
                {
                    "distributor_code": code,
                    "distributor_name": f"{prov['province']}{len(codes)}号经销商",
                    "tier": str(rng.choice(["一级", "二级"], p=[0.6, 0.4])),
                    "region": prov["region"],
                    "province": prov["province"],
                    "city": prov["city"],
                }
            )
        prov_dists[prov["province"]] = codes
    distributors = pl.DataFrame(dist_rows)

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
    # stores scatter a few km around their city centre
    lat = store_city["lat"].to_numpy() + rng.normal(0, 0.05, cfg.n_stores)
    lon = store_city["lon"].to_numpy() + rng.normal(0, 0.05, cfg.n_stores)
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
            "base_rate": [
                CHANNELS[channels[c]][1] * SIZE_CLASSES[sizes[s]][1]
                for c, s in zip(channel, size, strict=True)
            ],
            "tier": store_city["tier"],
        }
    )
    return distributors, stores
