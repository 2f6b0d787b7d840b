"""Scale presets of the simulated world.

Cost is linear in stores x SKUs x days, so each preset is a point on one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ScaleConfig:
    """How big the world is and the rates of its mechanisms."""

    name: str
    n_regions: int
    n_stores: int
    n_skus: int
    n_days: int
    stores_per_distributor: int
    start: date = date(2024, 1, 1)
    pos_share: float = 0.5  # stores whose POS reports daily sell-through
    scan_rate: float = 0.12  # mean share of sold units a consumer scans
    consumers_per_store: int = 60
    diverter_share: float = 0.08  # distributors that push stock across territory
    diversion_share: float = 0.25  # share of a diverter's sales that leaves its territory
    forged_rate: float = 0.003  # scans of codes that were never issued
    cloned_codes: float = 0.0005  # share of scanned codes copied onto fakes
    dirt: float = 1.0  # multiplier on every fault rate (0 turns dirt off)
    photo_reuse_rate: float = 0.01  # display checks submitted with another store's photo
    farming_store_share: float = 0.02  # stores whose staff farm the consumer-scan reward
    continue_days: int = 366  # how far `simulate --continue` may extend the window
    # channel optimisation (`geography`, `economics`): high-potential cities planted thin
    white_space_cities: int = 3  # planted white-space cities (0: none, and no pull cities)
    resident_share: float = 0.25  # most of a store pool living in a nearby pull city
    visitor_share: float = 0.08  # of a pull city's untapped units a week bought nearby

    @property
    def horizon_days(self) -> int:
        """Days the world is planned for (promotion calendar, market): window plus extension."""
        return self.n_days + self.continue_days


SCALES: dict[str, ScaleConfig] = {
    "tiny": ScaleConfig(
        "tiny", n_regions=3, n_stores=36, n_skus=8, n_days=560, stores_per_distributor=9
    ),
    "demo": ScaleConfig(
        "demo",
        n_regions=7,
        n_stores=2000,
        n_skus=60,
        n_days=731,
        stores_per_distributor=25,
        white_space_cities=22,
    ),
    "large": ScaleConfig(
        "large",
        n_regions=7,
        n_stores=8000,
        n_skus=90,
        n_days=731,
        stores_per_distributor=40,
        scan_rate=0.3,
        white_space_cities=25,
    ),
}


def get_scale(name: str) -> ScaleConfig:
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}: choose one of {', '.join(SCALES)}") from None


# named supply shocks `simulate --scenario` can plant (`bclake.simulator.scenarios`); a new
# name goes at the end: a scenario's random stream is seeded by its position here
SCENARIOS = ("none", "plant_outage", "demand_spike", "weather")
