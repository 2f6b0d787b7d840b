"""Market-research exports: competitor prices and the brand's share, per province, category
and month, delivered once a month has closed."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from bclake.simulator.emitters.out import Out
from bclake.simulator.lookup import add_months
from bclake.simulator.market import Market
from bclake.simulator.world import World

ZH = "zh"


def _grid(start: date, market: Market, world: World, share: np.ndarray) -> pl.DataFrame:
    """One row per month x province x category (the market arrays' order)."""
    provinces, cats = world.provinces, world.categories
    months = [add_months(start, m) for m in range(market.price_index.shape[0])]
    return pl.DataFrame(
        {
            "month": pl.Series(months).gather(
                np.repeat(np.arange(len(months)), len(provinces) * len(cats))
            ),
            "province": np.tile(np.repeat(provinces, len(cats)), len(months)),
            "category": np.tile(cats, len(months) * len(provinces)),
            "competitor_price_index": np.round(market.price_index.reshape(-1), 4),
            "promo_intensity": np.round(market.promo_intensity.reshape(-1), 4),
            "brand_share": share.reshape(-1),
        }
    )


def closed_months(
    out: Out,
    label: str,
    market: Market,
    share: np.ndarray,
    world: World,
    since: int,
    end_day: int,
) -> None:
    """Competitor prices and brand share (`share`: months x provinces x categories) for the
    months whose last day is in (since, end_day]."""
    look = out.lookup
    grid = _grid(look.start, market, world, share)
    close = (pl.col("month").dt.month_end() - pl.lit(look.start)).dt.total_days()
    grid = grid.filter(close > since, close <= end_day)
    if grid.height:
        out.landing.write("market.competitor_prices", grid, f"competitor_prices_{label}", header=ZH)
        out.landing.write("market.market_share", grid, f"market_share_{label}", header=ZH)
