"""The supply planning file (`config/supply.yaml`): lead times, service targets and costs.

The ERP exports carry the DCs, their stock and the plants' capacity; this file carries
what they do not. `load_supply` raises `SupplyConfigError` naming the file, the DC and
the field at fault, e.g.
``config/supply.yaml: DC DC01 (#1) service_level: Input should be less than 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bclake.core.config_files import load_config, require_unique_ids
from bclake.core.settings import Settings


class SupplyConfigError(ValueError):
    """A supply planning file that cannot be used, with what to fix."""


class DcSettings(BaseModel):
    """One regional DC's lead time from the plants and its service target."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="warehouse_code in the ERP warehouse export")
    lead_days: int = Field(ge=0, le=90, description="days from a plant's weekly run to stock")
    service_level: float | None = Field(None, ge=0.5, lt=1, description="P(no stock-out) a week")


class SupplyConfig(BaseModel):
    """Costs (shares of list price), horizons and DC settings for the supply plan."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    horizon_weeks: int = Field(13, ge=1, le=52)
    lost_sale_cost: float = Field(0.5, gt=0, le=10, description="x list price per unit lost")
    holding_cost_week: float = Field(0.005, ge=0, le=1, description="x list price per unit-week")
    changeover_cost: float = Field(0.02, ge=0, le=1, description="x list price per unit changed")
    expedite_premium: float = Field(0.15, ge=0, le=10, description="x list price per rush unit")
    transfer_yuan_per_case_km: float = Field(0.004, ge=0, description="yuan per case and km")
    transfer_fixed_yuan: float = Field(300, ge=0, description="yuan per transfer shipment")
    transfer_lead_days: int = Field(2, ge=0, le=30)
    transfer_window_weeks: int = Field(
        2, ge=1, le=8, description="weeks ahead a DC's projected stock is checked for transfers"
    )
    default_lead_days: int | None = Field(3, ge=0, le=90)
    default_service_level: float = Field(0.95, ge=0.5, lt=1)
    dcs: list[DcSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> SupplyConfig:
        require_unique_ids([d.id for d in self.dcs], "DC")
        if self.holding_cost_week >= self.lost_sale_cost:
            raise ValueError(
                "holding_cost_week must be below lost_sale_cost, else keeping stock never pays"
            )
        return self

    def dc(self, warehouse_code: str) -> tuple[int | None, float]:
        """(lead days or None when neither listed nor defaulted, service level) of a DC."""
        for d in self.dcs:
            if d.id == warehouse_code:
                return d.lead_days, d.service_level or self.default_service_level
        return self.default_lead_days, self.default_service_level


def load_supply(path: Path | None = None) -> SupplyConfig:
    """Read and validate a supply planning file (default: `Settings.supply_file`, from
    `BCLAKE_SUPPLY`). Raises `SupplyConfigError` with the file, the DC and the field."""
    path = Path(path) if path is not None else Settings.from_env().supply_file
    return load_config(path, SupplyConfig, "dcs", "DC", SupplyConfigError, "supply planning file")
