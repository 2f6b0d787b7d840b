"""The competitive market: monthly competitor price index, promotion intensity and share base.

Competitors move prices and run promotions per province and category; both
pull demand away from the brand, and the market-share export is computed
from the brand's own (uncensored) demand against this market.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROSS_ELASTICITY = 0.8  # demand ~ competitor_price_index ** 0.8
PROMO_STEAL = 0.15  # full competitor promotion intensity takes 15% of demand


@dataclass
class Market:
    price_index: np.ndarray  # months x provinces x categories, around 1.0
    promo_intensity: np.ndarray  # months x provinces x categories, 0..1
    base_share: np.ndarray  # provinces x categories: the brand's share at parity

    def demand_factor(self) -> np.ndarray:
        """months x provinces x categories multiplier on the brand's demand."""
        return self.price_index**CROSS_ELASTICITY * (1 - PROMO_STEAL * self.promo_intensity)


def build_market(
    n_months: int, n_provinces: int, n_categories: int, rng: np.random.Generator
) -> Market:
    shocks = rng.normal(0, 0.02, size=(n_months, n_provinces, n_categories))
    walk = np.cumsum(shocks, axis=0)
    walk -= walk.mean(axis=0, keepdims=True)
    price_index = np.clip(1.0 + walk, 0.85, 1.15)
    promo = np.clip(
        rng.beta(1.2, 5.0, size=(n_months, n_provinces, n_categories))
        + 0.15 * (rng.random((n_months, 1, n_categories)) < 0.2),
        0,
        1,
    )
    base_share = np.clip(rng.normal(0.18, 0.05, size=(n_provinces, n_categories)), 0.05, 0.4)
    return Market(price_index, promo, base_share)


def brand_share(market: Market, noise: np.ndarray) -> np.ndarray:
    """months x provinces x categories: the brand's measured share, 0.01..0.9.

    Competitor prices and promotions pull share the way they pull demand;
    `noise` (standard normal, one per cell) is the survey's 3% error.
    """
    share = market.base_share[None, :, :] / market.demand_factor() ** 0.5
    noisy = share * np.exp(0.03 * noise.reshape(share.shape))
    return np.round(np.clip(noisy, 0.01, 0.9), 4)
