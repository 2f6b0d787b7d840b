"""Precision-marketing plans (精准营销, 一人一推): load and validate the next coupon campaigns.

The plans live in one YAML file (`config/marketing.yaml`, or the file
`BCLAKE_MARKETING` names). `load_marketing` validates it and raises
`MarketingConfigError` naming the file, the plan and the field at fault, e.g.
``config/marketing.yaml: plan NEXT (#1) holdout_share: Input should be greater than 0``.
`expand_plans` turns the plans into one row per campaign to build, with
``category: each`` expanded to one plan per product category.

It is configuration, not data: the marketing assets read it when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bclake.core.config_files import load_config, require_unique_ids
from bclake.core.settings import Settings

EACH = "each"


class MarketingConfigError(ValueError):
    """A marketing plan file that cannot be used, with what to fix."""


class Plan(BaseModel):
    """One coupon campaign to plan: the offer, its budget and its hold-out."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,23}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    category: str = Field(min_length=1, description="a dim_product category, or `each`")
    coupon_value: float = Field(gt=0, le=1000, description="yuan off per coupon")
    budget_yuan: float = Field(gt=0, description="expected coupon cost allowed per plan, yuan")
    holdout_share: float = Field(0.1, gt=0, lt=1, description="random share of the list held out")
    valid_days: int = Field(14, ge=1, le=366, description="days the coupon is valid")


class MarketingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    margin_rate: float = Field(
        0.35, gt=0, le=1, description="share of an incremental sale (yuan) the brand keeps"
    )
    plans: list[Plan] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> MarketingConfig:
        require_unique_ids([p.id for p in self.plans], "plan")
        return self


@dataclass(frozen=True)
class CampaignPlan:
    """One campaign to build a list for: a plan with its category resolved."""

    plan_id: str
    name_zh: str
    name_en: str
    category: str
    coupon_value: float
    budget_yuan: float
    holdout_share: float
    valid_days: int


def load_marketing(path: Path | None = None) -> MarketingConfig:
    """Read and validate a plan file (default: `Settings.marketing_file`, from
    `BCLAKE_MARKETING`).

    Raises `MarketingConfigError` with the file, the plan id (or position) and
    the field, e.g. ``marketing.yaml: plan NEXT (#1) budget_yuan: ...``.
    """
    path = Path(path) if path is not None else Settings.from_env().marketing_file
    return load_config(
        path, MarketingConfig, "plans", "plan", MarketingConfigError, "marketing plan file"
    )


def expand_plans(config: MarketingConfig, categories: list[str]) -> list[CampaignPlan]:
    """One `CampaignPlan` per plan and category.

    `categories`: the product categories the warehouse knows (dim_product). A plan
    with ``category: each`` becomes one plan per category, id ``<id>-<category>``;
    any other category must be one of `categories`, else `MarketingConfigError`
    names the plan and the categories it could use.
    """
    known = sorted(set(categories))
    out: list[CampaignPlan] = []
    for p in config.plans:
        if p.category == EACH:
            cats = [(f"{p.id}-{c}", c) for c in known]
        elif p.category in known:
            cats = [(p.id, p.category)]
        else:
            raise MarketingConfigError(
                f"plan {p.id} category: {p.category!r} is not a product category; "
                f"use one of {', '.join(known) or '(none)'} or `each`"
            )
        for plan_id, category in cats:
            out.append(
                CampaignPlan(
                    plan_id=plan_id,
                    name_zh=p.name_zh,
                    name_en=p.name_en,
                    category=category,
                    coupon_value=p.coupon_value,
                    budget_yuan=p.budget_yuan,
                    holdout_share=p.holdout_share,
                    valid_days=p.valid_days,
                )
            )
    return out
