"""Named supply shocks planted in a simulated world, for testing supply plans under stress.

`simulate --scenario NAME` plans one shock at a known date and place, drawn
from the seed and the scenario's name, starting 6 to 10 weeks before the
window's last day (so the final weeks show the shock and the recovery):

- `plant_outage`: the plant with the most capacity runs at `OUTAGE_CAPACITY`
  (20%) of its capacity for `OUTAGE_DAYS` (3 production weeks, from a Monday);
  the ERP's plant capacity export shows the reduced capacity for those weeks.
- `demand_spike`: one of the three strongest SKUs of one region is wanted
  `SPIKE_PEAK` (3x) as much there for `SPIKE_DAYS` (18) days, rising over the
  first `SPIKE_RAMP_DAYS` (4) days and falling over the last four.
- `weather`: one region has `WEATHER_DAYS` (10) days of extreme weather chosen by
  the season: torrential rain and flooding (May-October, southern, eastern and
  central regions) or a snowstorm and cold wave (November-April, northern regions).
  Its DC ships nothing for the first `WEATHER_STOP_DAYS` (4) days and its shipments
  take `WEATHER_EXTRA_LEAD_DAYS` (3) extra days for the rest; demand for two
  weather-sensitive categories shifts (`WEATHER`).

A scenario is a list of `Shock`s saved in `SimState.scenario`, so `--continue`
carries it on; each simulated day asks it for the day's `dynamics.Effects`
(None on a day without an active shock). Until its first shock (and always with
`none`) the channel runs exactly as without a scenario and draws the same random
numbers, so everything before the start date is the same as in the world without
it; from then on the shocked world's draws differ. The plan itself comes from a
generator of its own, never from the world's streams. The truth is
`truth/scenario.parquet` (`Scenario.frame`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from bclake.simulator.config import SCENARIOS, ScaleConfig
from bclake.simulator.dynamics import Channel, Effects
from bclake.simulator.world import CATEGORIES, PLANTS, REGIONS, World

DAYS_BEFORE_END = (70, 42)  # a shock starts 10 to 6 weeks before the window's last day
OUTAGE_CAPACITY = 0.2  # share of its capacity the failed plant still has
OUTAGE_DAYS = 21  # three Mondays, so three weeks' production
SPIKE_PEAK = 3.0  # demand multiplier at the spike's top
SPIKE_DAYS = 18
SPIKE_RAMP_DAYS = 4  # days to reach the top, and to come down again
SPIKE_CANDIDATES = 3  # the spiked SKU is one of the region's strongest sellers
WEATHER_DAYS = 10
WEATHER_STOP_DAYS = 4  # roads closed: the DC ships nothing
WEATHER_EXTRA_LEAD_DAYS = 3  # then shipments take this much longer
# kind -> (months, regions it strikes, category demand multipliers, name, why demand shifts)
WEATHER: dict[str, tuple[tuple[int, ...], tuple[str, ...], dict[str, float], str, str]] = {
    "rainstorm": (
        (5, 6, 7, 8, 9, 10),
        ("华南", "华东", "华中", "西南"),
        {"饮料": 1.4, "乳品": 0.7},
        "torrential rain and flooding (暴雨洪涝)",
        "shoppers stock up on bottled drinks and buy less chilled dairy",
    ),
    "snowstorm": (
        (11, 12, 1, 2, 3, 4),
        ("华北", "东北", "西北", "华中"),
        {"饮料": 0.6, "调味品": 1.3},
        "snowstorm and cold wave (暴雪寒潮)",
        "cold drinks sell less, hotpot bases and sauces for cooking at home more",
    ),
}
SHOCK_KINDS = ("plant_outage", "demand_spike", "demand_shift", "delivery_stop", "delivery_delay")
FRAME_SCHEMA = {
    "shock_id": pl.Int32,
    "scenario": pl.String,
    "kind": pl.String,
    "start_date": pl.Date,
    "end_date": pl.Date,
    "region": pl.String,
    "warehouse_code": pl.String,
    "plant_code": pl.String,
    "sku_code": pl.String,
    "category": pl.String,
    "magnitude": pl.Float64,
    "unit": pl.String,
    "description": pl.String,
}


@dataclass(frozen=True)
class Shock:
    """One effect of a scenario on the channel, on days `start_day`..`end_day` (inclusive).

    `kind`: plant_outage (magnitude: capacity factor of `plant`), demand_spike
    (peak demand factor of `sku` in `region`, ramped over `ramp_days`),
    demand_shift (demand factor of `category` in `region`), delivery_stop
    (`region`'s DC ships nothing; magnitude 0, the share shipped) or
    delivery_delay (magnitude: extra lead days from `region`'s DC).
    `region` indexes `REGIONS` (and so the warehouses), `plant` `PLANTS`, `sku`
    the products.
    """

    kind: str
    start_day: int
    end_day: int
    magnitude: float
    unit: str
    description: str
    region: int | None = None
    plant: int | None = None
    sku: int | None = None
    category: str | None = None
    ramp_days: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SHOCK_KINDS:
            raise ValueError(f"unknown shock kind {self.kind!r}: one of {', '.join(SHOCK_KINDS)}")

    def factor(self, t: int) -> float:
        """The magnitude on day `t`, ramped linearly from 1 at both ends when `ramp_days`."""
        if not self.ramp_days:
            return self.magnitude
        i, n = t - self.start_day, self.end_day - self.start_day + 1
        return 1.0 + (self.magnitude - 1.0) * min(
            1.0, (i + 1) / self.ramp_days, (n - i) / self.ramp_days
        )


@dataclass(frozen=True)
class Scenario:
    """A named scenario's shocks (`plan_scenario`); saved in the simulation state."""

    name: str
    shocks: tuple[Shock, ...]

    def effects(self, t: int, channel: Channel) -> Effects | None:
        """What the shocks active on day `t` change, or None when none is active."""
        active = [s for s in self.shocks if s.start_day <= t <= s.end_day]
        if not active:
            return None
        n_s, n_k = channel.base.shape
        n_w = channel.dc_stock.shape[0]
        kinds = {s.kind for s in active}
        fx = Effects(
            demand=np.ones((n_s, n_k)) if kinds & {"demand_spike", "demand_shift"} else None,
            capacity=np.ones(n_k) if "plant_outage" in kinds else None,
            dc_closed=np.zeros(n_w, dtype=bool) if "delivery_stop" in kinds else None,
            dc_extra_lead=np.zeros(n_w, dtype=np.int64) if "delivery_delay" in kinds else None,
        )
        for s in active:
            if s.kind == "plant_outage":
                fx.capacity[channel.sku_plant == s.plant] *= s.magnitude
            elif s.kind == "delivery_stop":
                fx.dc_closed[s.region] = True
            elif s.kind == "delivery_delay":
                fx.dc_extra_lead[s.region] += int(s.magnitude)
            else:
                skus = np.arange(n_k) == s.sku if s.sku is not None else _of_category(channel, s)
                fx.demand[np.ix_(channel.store_region == s.region, skus)] *= s.factor(t)
        return fx

    def frame(self, start: date, world: World) -> pl.DataFrame:
        """One row per shock (`FRAME_SCHEMA`): dates inclusive, names instead of indices."""
        whs = world.warehouses["warehouse_code"].to_list()
        skus = world.products["sku_code"].to_list()
        cats = world.products["category"].to_list()
        rows = [
            {
                "shock_id": i + 1,
                "scenario": self.name,
                "kind": s.kind,
                "start_date": start + timedelta(days=s.start_day),
                "end_date": start + timedelta(days=s.end_day),
                "region": None if s.region is None else REGIONS[s.region],
                "warehouse_code": None if s.region is None else whs[s.region],
                "plant_code": None if s.plant is None else PLANTS[s.plant][0],
                "sku_code": None if s.sku is None else skus[s.sku],
                "category": s.category if s.sku is None else cats[s.sku],
                "magnitude": s.magnitude,
                "unit": s.unit,
                "description": s.description,
            }
            for i, s in enumerate(self.shocks)
        ]
        return pl.DataFrame(rows, schema=FRAME_SCHEMA)


def _of_category(channel: Channel, shock: Shock) -> np.ndarray:
    """SKUs: whether the SKU is of the shock's category."""
    return channel.cat_idx == list(CATEGORIES).index(shock.category)


def check_scenario(name: str) -> str:
    """`name` if it is a scenario (`config.SCENARIOS`); ValueError otherwise."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)}")
    return name


def plan_scenario(
    name: str, cfg: ScaleConfig, seed: int, world: World, channel: Channel, calendar: pl.DataFrame
) -> Scenario | None:
    """The shocks of scenario `name` in this world (None for `none`).

    Deterministic in (seed, name): drawn from a generator of their own, so the
    world's random streams are untouched. `calendar` gives the weekdays and
    months; `channel` the stores' base demand and the plants' capacity.
    Raises ValueError for an unknown name.
    """
    if check_scenario(name) == "none":
        return None
    rng = np.random.default_rng([seed, SCENARIOS.index(name), 0x5C0C])
    lo = max(0, cfg.n_days - 1 - DAYS_BEFORE_END[0])
    hi = max(lo, cfg.n_days - 1 - DAYS_BEFORE_END[1])
    if name == "plant_outage":
        shocks = _plant_outage(rng, lo, hi, channel, calendar)
    elif name == "demand_spike":
        shocks = _demand_spike(rng, lo, hi, cfg, world, channel)
    elif name == "weather":
        shocks = _weather(rng, lo, hi, world, calendar)
    else:  # a name added to config.SCENARIOS without its shocks here
        raise ValueError(f"scenario {name!r} has no shocks in bclake.simulator.scenarios")
    return Scenario(name, shocks)


def _plant_outage(
    rng: np.random.Generator, lo: int, hi: int, channel: Channel, calendar: pl.DataFrame
) -> tuple[Shock, ...]:
    weekday = calendar["weekday"].to_numpy()
    mondays = [t for t in range(lo, hi + 1) if weekday[t] == 0]
    start = int(rng.choice(mondays))
    plant_capacity = np.zeros(len(PLANTS))
    np.add.at(plant_capacity, channel.sku_plant, channel.capacity)
    plant = int(np.argmax(plant_capacity))
    code, plant_name, _ = PLANTS[plant]
    return (
        Shock(
            "plant_outage",
            start,
            start + OUTAGE_DAYS - 1,
            OUTAGE_CAPACITY,
            "capacity_factor",
            f"{plant_name} ({code}), the plant with the most capacity, breaks down: it runs "
            f"at {OUTAGE_CAPACITY:.0%} of its weekly capacity for {OUTAGE_DAYS // 7} weeks",
            plant=plant,
        ),
    )


def _demand_spike(
    rng: np.random.Generator, lo: int, hi: int, cfg: ScaleConfig, world: World, channel: Channel
) -> tuple[Shock, ...]:
    start = int(rng.integers(lo, hi + 1))
    region = int(rng.integers(cfg.n_regions))
    # the region's expected daily units per SKU on the start day, launch curve included
    age = start - channel.launch_day
    live = (age >= 60) & channel.success
    rate = channel.base[channel.store_region == region].sum(axis=0) * channel.cat_mult[start] * live
    strongest = np.argsort(-rate, kind="stable")[:SPIKE_CANDIDATES]
    sku = int(rng.choice(strongest))
    code = world.products["sku_code"][sku]
    return (
        Shock(
            "demand_spike",
            start,
            start + SPIKE_DAYS - 1,
            SPIKE_PEAK,
            "demand_factor",
            f"{code} ({world.products['sku_name'][sku]}) goes viral in {REGIONS[region]}: "
            f"demand there rises to {SPIKE_PEAK:g}x over {SPIKE_RAMP_DAYS} days, holds and "
            f"falls back over {SPIKE_RAMP_DAYS} days ({SPIKE_DAYS} days in all)",
            region=region,
            sku=sku,
            ramp_days=SPIKE_RAMP_DAYS,
        ),
    )


def _weather(
    rng: np.random.Generator, lo: int, hi: int, world: World, calendar: pl.DataFrame
) -> tuple[Shock, ...]:
    start = int(rng.integers(lo, hi + 1))
    month = calendar["date"][start].month
    kind = next(k for k, w in WEATHER.items() if month in w[0])
    _, strikes, shifts, what, why = WEATHER[kind]
    regions = world.warehouses["region"].to_list()
    exposed = [r for r in regions if r in strikes] or regions
    region = REGIONS.index(exposed[int(rng.integers(len(exposed)))])
    end = start + WEATHER_DAYS - 1
    place = REGIONS[region]
    shocks = [
        Shock(
            "delivery_stop",
            start,
            start + WEATHER_STOP_DAYS - 1,
            0.0,
            "share_shipped",
            f"{what} in {place}: roads closed, its DC ships nothing",
            region=region,
        ),
        Shock(
            "delivery_delay",
            start + WEATHER_STOP_DAYS,
            end,
            float(WEATHER_EXTRA_LEAD_DAYS),
            "extra_lead_days",
            f"{what} in {place}: shipments from its DC to distributors take "
            f"{WEATHER_EXTRA_LEAD_DAYS} extra days",
            region=region,
        ),
    ]
    for category, factor in shifts.items():
        shocks.append(
            Shock(
                "demand_shift",
                start,
                end,
                factor,
                "demand_factor",
                f"{what} in {place}: {why} ({category} x{factor:g})",
                region=region,
                category=category,
            )
        )
    return tuple(shocks)
