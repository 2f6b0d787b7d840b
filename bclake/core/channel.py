"""The channel optimisation file (`config/channel.yaml`): unit costs, margins and rules.

The DMS and ERP exports carry what each store and distributor ordered, took delivered,
was visited, paid and promoted; this file carries the brand's unit costs and gross margin
(which turn those into a contribution), the rule that calls a store or distributor
inefficient and the white-space settings. `load_channel` raises `ChannelConfigError`
naming the file and the key at fault, e.g.
``config/channel.yaml: inefficiency.peer_percentile: Input should be less than 0.5``.

The unit costs reach dbt as vars (`ChannelConfig.dbt_vars`, passed by the warehouse
asset on every build; `dbt_project.yml` holds the same defaults for ad-hoc dbt runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bclake.core.config_files import load_config
from bclake.core.settings import Settings

TIERS = (1, 2, 3, 4)


class ChannelConfigError(ValueError):
    """A channel optimisation file that cannot be used, with what to fix."""


class Costs(BaseModel):
    """The brand's unit costs of serving the channel (yuan)."""

    model_config = ConfigDict(extra="forbid")

    cost_share: float = Field(1.0, gt=0, le=1, description="brand's share of shared costs")
    drop_cost: float = Field(38.0, ge=0, description="yuan per store drop")
    road_km_cost: float = Field(0.65, ge=0, description="yuan per road km of a round trip")
    road_factor: float = Field(1.35, ge=1, le=3, description="road km per great-circle km")
    visit_cost: dict[int, float] = Field(
        default_factory=lambda: {1: 260.0, 2: 220.0, 3: 190.0, 4: 170.0},
        description="yuan per rep visit by city tier (1-4)",
    )
    visit_cost_default: float = Field(200.0, ge=0, description="yuan per visit, tier unknown")
    shipment_cost: float = Field(150.0, ge=0, description="yuan per DC shipment")
    shipment_road_km_cost: float = Field(1.0, ge=0, description="yuan per road km, DC trip")
    account_cost_month: float = Field(400.0, ge=0, description="yuan a month per distributor")

    @model_validator(mode="after")
    def _tiers(self) -> Costs:
        bad = sorted(set(self.visit_cost) - set(TIERS))
        if bad:
            raise ValueError(f"visit_cost: city tiers are 1-4, not {bad}")
        if any(v < 0 for v in self.visit_cost.values()):
            raise ValueError("visit_cost: costs must be >= 0")
        return self


class Margin(BaseModel):
    """Gross margin as a share of list value, by product category."""

    model_config = ConfigDict(extra="forbid")

    by_category: dict[str, float] = Field(default_factory=dict)
    default: float = Field(0.45, ge=0, lt=1)

    @model_validator(mode="after")
    def _shares(self) -> Margin:
        bad = sorted(c for c, v in self.by_category.items() if not 0 <= v < 1)
        if bad:
            raise ValueError(f"by_category: shares must be in [0, 1), not for {bad}")
        return self


class Inefficiency(BaseModel):
    """The rule that calls a store or distributor inefficient (docs/channel.md)."""

    model_config = ConfigDict(extra="forbid")

    peer_percentile: float = Field(0.1, gt=0, lt=0.5)
    min_peers: int = Field(5, ge=2)
    laggard_max_margin: float = Field(0.05, ge=-1, le=1)
    trend_decline_per_week: float = Field(0.01, ge=0, le=1)
    move_min_km: float = Field(30.0, ge=0)


class WhiteSpace(BaseModel):
    """White-space estimate and coverage plan settings."""

    model_config = ConfigDict(extra="forbid")

    h3_resolution: int = Field(5, ge=0, le=9)
    new_outlets: int = Field(10, ge=0, le=1000)
    # the plan is also laid out this far (the dashboard's slider), `in_plan` marks the first N
    plan_outlets_max: int = Field(50, ge=0, le=1000)
    confidence_prior: float = Field(50.0, gt=0)
    outlet_capacity_quantile: float = Field(0.5, gt=0, lt=1)
    min_signal_consumers: int = Field(3, ge=0)


class ChannelConfig(BaseModel):
    """Everything the channel model reads from the brand (see config/channel.yaml)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    window_weeks: int = Field(26, ge=4, le=104)
    costs: Costs = Field(default_factory=Costs)
    margin: Margin = Field(default_factory=Margin)
    inefficiency: Inefficiency = Field(default_factory=Inefficiency)
    white_space: WhiteSpace = Field(default_factory=WhiteSpace)

    def visit_cost(self, tier: int | None) -> float:
        """Yuan per rep visit at a store of city `tier` (default when unknown), x cost_share."""
        c = self.costs
        return c.visit_cost.get(tier, c.visit_cost_default) * c.cost_share  # type: ignore[arg-type]

    def dbt_vars(self) -> dict[str, object]:
        """The dbt vars of `marts/channel` (names as in dbt_project.yml); costs already
        multiplied by `cost_share`."""
        c, share = self.costs, self.costs.cost_share
        return {
            "channel_window_weeks": self.window_weeks,
            "channel_drop_cost": c.drop_cost * share,
            "channel_road_km_cost": c.road_km_cost * share,
            "channel_road_factor": c.road_factor,
            "channel_visit_cost": {str(t): v * share for t, v in sorted(c.visit_cost.items())},
            "channel_visit_cost_default": c.visit_cost_default * share,
            "channel_shipment_cost": c.shipment_cost * share,
            "channel_shipment_road_km_cost": c.shipment_road_km_cost * share,
            "channel_account_cost_month": c.account_cost_month * share,
            "channel_margin_share": dict(self.margin.by_category),
            "channel_margin_share_default": self.margin.default,
        }


def load_channel(path: Path | None = None) -> ChannelConfig:
    """Read and validate a channel optimisation file (default: `Settings.channel_file`,
    from `BCLAKE_CHANNEL`). Raises `ChannelConfigError` naming the file and the key."""
    path = Path(path) if path is not None else Settings.from_env().channel_file
    return load_config(
        path, ChannelConfig, "costs", "cost", ChannelConfigError, "channel optimisation file"
    )
