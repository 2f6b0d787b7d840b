"""Uplift targeting (一人一推): who gets which coupon, learned from campaign hold-outs.

Past CDP campaigns hold out a random share of each target list, so the coupon's effect
on a consumer (the uplift: P(buy | coupon) - P(buy | no coupon), in probability points)
is identifiable. This module learns it with LightGBM meta-learners over a long table of
campaign members, picks the learner that ranks held-out campaigns best by the Qini
coefficient, and turns its scores into budgeted target lists.

Inputs (dbt marts, `dbt_project/models/marts/marketing/`):
- training: `marts.fct_campaign_uplift_training`, one row per campaign x member: the offer
  (offer_category, coupon_value), treated (bool), responded (bool, any store order in
  the window), window_order_amount (yuan), redeemed_coupon (bool), start_date, learnable (bool),
  fault, and point-in-time consumer features (as of the day before the start);
- candidates: `marts.fct_marketing_candidates`, one row per consented consumer x
  offer_category at the newest snapshot, with the same features.

API in the spirit of mlforecast: `UpliftModel(learner).fit(training)` then
`.predict(frame)`; `select_learner(training)` runs the time-ordered comparison (train on
earlier learnable campaigns, score the last `n_heldout`); `plan_campaigns` runs it all
and returns the ml tables (`MarketingResult`).

Learners (Kunzel et al. 2019 for T/X, Kennedy 2020 for DR), each a pair or trio of
LightGBM models with early stopping on a 20% validation split:
- ``t_learner``: P(y | x, coupon) - P(y | x, no coupon), one classifier per arm;
- ``x_learner``: imputed effects D1 = y - m0(x) (treated), D0 = m1(x) - y (hold-out),
  one regressor each, blended by the propensity e (the campaign's treated share):
  tau = e * tau0 + (1 - e) * tau1;
- ``dr_learner``: the doubly robust pseudo-outcome
  m1 - m0 + t (y - m1) / e - (1 - t) (y - m0) / (1 - e), outcome models cross-fitted on
  two folds, regressed on x;
- ``ensemble``: the mean of the three, steadier than any one when the effect is small
  against the noise of a purchase;
- ``response_model``: P(y | x, coupon) on the treated arm only (what a response model
  ranks by); scored by Qini like the others, never chosen as the uplift learner.

Money, per consumer and plan: expected_cost = coupon_value x P(redeem | coupon) (a
classifier on the treated arm's redemptions); expected_incremental_revenue = uplift x
expected basket (yuan: the consumer's average order, shrunk towards the mean order
amount of past campaign responders); both in yuan.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import polars as pl

from bclake.core.cpus import threads_for
from bclake.core.marketing import CampaignPlan
from bclake.ml.panel import encode_categories

BASE_LEARNERS = ("t_learner", "x_learner", "dr_learner")
ENSEMBLE = "ensemble"
LEARNERS = (*BASE_LEARNERS, ENSEMBLE)
RESPONSE = "response_model"
# training columns that are keys, outcomes or bookkeeping, never features
NOT_FEATURES = {
    "campaign_id",
    "consumer_id",
    "snapshot_date",
    "start_date",
    "end_date",
    "learnable",
    "fault",
    "treated",
    "responded",
    "window_orders",
    "window_order_amount",
    "redeemed_coupon",
    "consent_marketing",
    # high-cardinality codes: kept for the lists, not learned from
    "home_store_code",
    "home_distributor_code",
}
# Small, heavily regularised trees: a coupon moves a purchase rate by a few points under
# the noise of every other visit, and looser trees fit that noise (on held-out campaigns
# their Qini was a third of these trees').
DEFAULT_PARAMS = {
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "cat_smooth": 10.0,
    "verbose": -1,
    "num_threads": 0,  # 0: `core.cpus.model_threads()` at fit time
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
}
MAX_ROUNDS = 300
EARLY_STOPPING = 20
BASKET_PRIOR_ORDERS = 3.0  # a consumer's average order counts as this many past responses


# --- features -----------------------------------------------------------------------------
@dataclass
class FeatureEncoder:
    """Turns a feature frame into a float matrix: numbers as they are, strings and
    booleans as category codes learned at `fit` (`bclake.ml.panel.encode_categories`:
    unseen or null -> NaN, LightGBM's missing value).

    `columns`: the feature columns, in order; `known`: for each categorical column, its
    value -> code mapping.
    """

    columns: list[str] = field(default_factory=list)
    known: dict[str, dict[str, int]] = field(default_factory=dict)

    def fit(self, frame: pl.DataFrame) -> FeatureEncoder:
        self.columns = [c for c in frame.columns if c not in NOT_FEATURES]
        _, self.known = encode_categories(frame.select(self.columns), self.columns, {})
        return self

    @property
    def categorical(self) -> list[int]:
        """Positions of the categorical columns in the matrix."""
        return [i for i, c in enumerate(self.columns) if c in self.known]

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """(rows, len(columns)) float64; raises KeyError naming a missing feature column."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise KeyError(f"feature columns missing from the frame: {', '.join(missing)}")
        encoded, _ = encode_categories(frame.select(self.columns), self.columns, self.known)
        return encoded.to_numpy().astype(np.float64)


# --- LightGBM heads -----------------------------------------------------------------------
def _train(
    X: np.ndarray,
    y: np.ndarray,
    categorical: list[int],
    objective: str,
    seed: int,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """One LightGBM model (binary or regression) with early stopping on a random 20%."""
    rng = np.random.default_rng(seed)
    valid = rng.random(len(y)) < 0.2
    if valid.sum() < 10 or (~valid).sum() < 10:
        valid = np.zeros(len(y), dtype=bool)
    params = {
        **DEFAULT_PARAMS,
        "objective": objective,
        "seed": seed,
        "num_threads": threads_for(DEFAULT_PARAMS["num_threads"], len(y)),
        "min_data_in_leaf": int(min(DEFAULT_PARAMS["min_data_in_leaf"], max(2, len(y) // 20))),
    }
    w = None if weight is None else weight[~valid]
    train = lgb.Dataset(
        X[~valid], y[~valid], weight=w, categorical_feature=categorical, free_raw_data=False
    )
    if not valid.any():
        return lgb.train(params, train, num_boost_round=50)
    wv = None if weight is None else weight[valid]
    val = lgb.Dataset(X[valid], y[valid], weight=wv, reference=train)
    return lgb.train(
        params,
        train,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[val],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )


def _predict(model: lgb.Booster, X: np.ndarray) -> np.ndarray:
    return model.predict(
        X, num_iteration=model.best_iteration or None, num_threads=threads_for(None, len(X))
    )


def _contrib(model: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """Per-feature contributions (rows, features), without the bias column."""
    out = model.predict(
        X,
        num_iteration=model.best_iteration or None,
        pred_contrib=True,
        num_threads=threads_for(None, len(X)),
    )
    return np.asarray(out)[:, :-1]


def _encoded(training: pl.DataFrame, shared: dict) -> dict:
    """Fill `shared` (once) with the encoder, the matrix X, arm t, outcome y and each row's
    propensity e (its campaign's treated share: assignment is random) of `training`."""
    if "encoder" not in shared:
        # the same rows in any order give the same model (the validation split is by row)
        training = training.sort("campaign_id", "consumer_id")
        encoder = FeatureEncoder().fit(training)
        shared.update(
            encoder=encoder,
            X=encoder.transform(training),
            t=training["treated"].to_numpy().astype(bool),
            y=training["responded"].to_numpy().astype(np.float64),
            e=training.select(pl.col("treated").cast(pl.Float64).mean().over("campaign_id"))
            .to_series()
            .to_numpy()
            .clip(0.05, 0.95),
        )
    return shared


def _dr_tau(
    X: np.ndarray, y: np.ndarray, t: np.ndarray, e: np.ndarray, cat: list[int], s: int
) -> lgb.Booster:
    """The DR-learner's effect model: the doubly robust pseudo-outcome (outcome models
    cross-fitted on two folds) regressed on X."""
    fold = np.random.default_rng(s).random(len(y)) < 0.5
    psi = np.empty(len(y))
    for k, part in enumerate((fold, ~fold)):
        other = ~part
        m1 = _train(X[other & t], y[other & t], cat, "binary", s + 10 * k)
        m0 = _train(X[other & ~t], y[other & ~t], cat, "binary", s + 10 * k + 1)
        mu1, mu0 = _predict(m1, X[part]), _predict(m0, X[part])
        tp, yp, ep = t[part], y[part], e[part]
        psi[part] = mu1 - mu0 + tp * (yp - mu1) / ep - (~tp) * (yp - mu0) / (1 - ep)
    return _train(X, psi, cat, "regression", s + 2)


# --- learners -----------------------------------------------------------------------------
@dataclass
class UpliftModel:
    """One meta-learner (`learner` in LEARNERS, or RESPONSE) over the long training table.

    `fit(training)`: rows of campaign members with `treated`, `responded` and features
    (see the module docstring); `predict(frame)` -> float64 array, one score per row:
    the uplift in probability points (-1..1) for the meta-learners, P(buy | coupon) for
    the response model. `contributions(frame)`: (rows, features) additive drivers of
    that score (LightGBM SHAP values; for the T-learner in log-odds of each arm).
    """

    learner: str = "t_learner"
    seed: int = 7
    encoder: FeatureEncoder = field(default_factory=FeatureEncoder)
    models: dict[str, lgb.Booster] = field(default_factory=dict)
    propensity: float = 0.8
    members: list[UpliftModel] = field(default_factory=list)  # the ensemble's learners

    def __post_init__(self) -> None:
        if self.learner not in (*LEARNERS, RESPONSE):
            raise ValueError(
                f"unknown learner {self.learner!r}: use one of {(*LEARNERS, RESPONSE)}"
            )

    def fit(self, training: pl.DataFrame, shared: dict | None = None) -> UpliftModel:
        """Fit on `training`. `shared`: a dict the caller passes to every fit on the same
        rows and seed, so the encoded matrix and the per-arm outcome models (the T- and
        X-learners' and the response model's, identical by construction) are built once."""
        if training.is_empty():
            raise ValueError("no training rows: no learnable campaign")
        shared = _encoded(training, {} if shared is None else shared)
        self.encoder = shared["encoder"]
        if self.learner == ENSEMBLE:
            self.members = [
                UpliftModel(n, seed=self.seed).fit(training, shared) for n in BASE_LEARNERS
            ]
            return self
        X, t, y, e = shared["X"], shared["t"], shared["y"], shared["e"]
        if not t.any() or (self.learner != RESPONSE and t.all()):
            raise ValueError("the training rows need both a treated and a hold-out arm")
        cat = self.encoder.categorical

        def arm(treated: bool, seed: int) -> lgb.Booster:
            key = ("arm", treated, seed)
            if key not in shared:
                rows = t if treated else ~t
                shared[key] = _train(X[rows], y[rows], cat, "binary", seed)
            return shared[key]

        self.propensity = float(t.mean())
        s = self.seed
        if self.learner == RESPONSE:
            self.models = {"m1": arm(True, s)}
        elif self.learner == "t_learner":
            self.models = {"m1": arm(True, s), "m0": arm(False, s + 1)}
        elif self.learner == "x_learner":
            m1, m0 = arm(True, s), arm(False, s + 1)
            d1 = y[t] - _predict(m0, X[t])
            d0 = _predict(m1, X[~t]) - y[~t]
            self.models = {
                "tau1": _train(X[t], d1, cat, "regression", s + 2),
                "tau0": _train(X[~t], d0, cat, "regression", s + 3),
            }
        else:
            self.models = {"tau": _dr_tau(X, y, t, e, cat, s)}
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        if self.learner == ENSEMBLE:
            return np.mean([m.predict(frame) for m in self.members], axis=0)
        X = self.encoder.transform(frame)
        m = self.models
        if self.learner == RESPONSE:
            return _predict(m["m1"], X)
        if self.learner == "t_learner":
            return _predict(m["m1"], X) - _predict(m["m0"], X)
        if self.learner == "x_learner":
            g = self.propensity
            return g * _predict(m["tau0"], X) + (1 - g) * _predict(m["tau1"], X)
        return _predict(m["tau"], X)

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        if self.learner == ENSEMBLE:  # the members in probability points (not the T-learner)
            return np.mean(
                [m.contributions(frame) for m in self.members if m.learner != "t_learner"],
                axis=0,
            )
        X = self.encoder.transform(frame)
        m = self.models
        if self.learner == RESPONSE:
            return _contrib(m["m1"], X)
        if self.learner == "t_learner":
            return _contrib(m["m1"], X) - _contrib(m["m0"], X)
        if self.learner == "x_learner":
            g = self.propensity
            return g * _contrib(m["tau0"], X) + (1 - g) * _contrib(m["tau1"], X)
        return _contrib(m["tau"], X)


def fit_classifier(training: pl.DataFrame, target: str, seed: int = 11) -> UpliftModel:
    """A response-style classifier of `target` (a bool column) on the treated arm, e.g.
    `redeemed_coupon` for P(redeem | coupon). Returns an `UpliftModel` whose `predict` is
    that probability."""
    model = UpliftModel(RESPONSE, seed=seed)
    return model.fit(training.with_columns(responded=pl.col(target)))


# --- Qini and AUUC ------------------------------------------------------------------------
def _cumulative(
    y: np.ndarray, t: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts after targeting the top k by score, at each distinct score (ties together).

    Returns (k, n_t, n_c, y_t, y_c), each starting with 0 at k = 0.
    """
    order = np.argsort(-score, kind="stable")
    y, t, s = y[order].astype(np.float64), t[order].astype(bool), score[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    # the end of each run of tied scores: a threshold cannot split a tie
    last = np.r_[s[1:] != s[:-1], True]
    k = np.nonzero(last)[0] + 1
    zero = np.zeros(1)
    return (
        np.r_[zero, k],
        np.r_[zero, n_t[last]],
        np.r_[zero, n_c[last]],
        np.r_[zero, y_t[last]],
        np.r_[zero, y_c[last]],
    )


def qini_curve(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve of a ranking (Radcliffe 2007).

    y: outcome (0/1), t: treated (bool), score: higher = target first; one entry per
    consumer. Targeting the top k, the curve is the incremental responses
    Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k) (responders among the treated minus the
    hold-out's responders scaled to the treated count; 0 while N_c(k) = 0), at each
    distinct score. Returns (share targeted k / n in 0..1, Q(k)), starting at (0, 0).
    """
    k, n_t, n_c, y_t, y_c = _cumulative(y, t, score)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, y_t - y_c * n_t / np.maximum(n_c, 1), 0.0)
    return k / max(len(y), 1), q


def _area(x: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (q[1:] + q[:-1]) / 2))


def qini_coefficient(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> float:
    """Radcliffe's Qini coefficient: the area between the Qini curve and the random line
    (the straight line to the same total), divided by the same area of the perfect ranking
    (treated responders first, hold-out responders last; Radcliffe 2007, as in
    scikit-uplift's `qini_auc_score`). 1 = perfect, 0 = random, negative = worse than
    random. NaN when an arm is empty or the perfect ranking gains nothing.
    """
    y, t = np.asarray(y, dtype=np.float64), np.asarray(t, dtype=bool)
    if t.all() or not t.any():
        return float("nan")
    x, q = qini_curve(y, t, np.asarray(score, dtype=np.float64))
    random = _area(x, x * q[-1])
    perfect_score = np.where(t, y, -y).astype(np.float64)  # 1, 0, -1 from top to bottom
    xp, qp = qini_curve(y, t, perfect_score)
    denom = _area(xp, qp) - random
    return (_area(x, q) - random) / denom if denom > 0 else float("nan")


def uplift_curve(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The uplift curve of Gutierrez & Gerardy (2017): targeting the top k,
    U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k, incremental responses if all k got
    the coupon (0 while an arm is empty). Returns (share targeted, U(k) / n)."""
    k, n_t, n_c, y_t, y_c = _cumulative(y, t, score)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(
            (n_t > 0) & (n_c > 0), y_t / np.maximum(n_t, 1) - y_c / np.maximum(n_c, 1), 0
        )
    n = max(len(y), 1)
    return k / n, lift * k / n


def auuc(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> float:
    """Area under the uplift curve (Gutierrez & Gerardy 2017) above the random line, in
    incremental responses per consumer of the population (0 = random)."""
    x, u = uplift_curve(np.asarray(y), np.asarray(t, dtype=bool), np.asarray(score, dtype=float))
    return _area(x, u) - _area(x, x * u[-1])


# --- model selection ----------------------------------------------------------------------
@dataclass
class Selection:
    """The time-ordered comparison of the learners.

    scores: learner, qini, auuc, heldout_campaigns (comma-separated ids), train_campaigns,
    heldout_rows, fit_seconds, chosen (bool); curves: learner, share_targeted,
    incremental_responses, random_incremental_responses (101 points per learner);
    campaigns: campaign_id, offer_category, start_date, members, role ('train',
    'heldout' or 'skipped'), fault; chosen: the learner chosen.
    """

    scores: pl.DataFrame
    curves: pl.DataFrame
    campaigns: pl.DataFrame
    chosen: str


def _campaign_roles(training: pl.DataFrame, n_heldout: int) -> pl.DataFrame:
    per = (
        training.group_by("campaign_id")
        .agg(
            pl.col("offer_category").first(),
            pl.col("coupon_value").first(),
            pl.col("start_date").first(),
            pl.col("learnable").first(),
            pl.col("fault").first(),
            pl.len().alias("members"),
        )
        .sort("start_date", "campaign_id")
    )
    learnable = per.filter("learnable")["campaign_id"].to_list()
    held = learnable[-n_heldout:] if len(learnable) > n_heldout else learnable[1:]
    return per.with_columns(
        role=pl.when(~pl.col("learnable"))
        .then(pl.lit("skipped"))
        .when(pl.col("campaign_id").is_in(held))
        .then(pl.lit("heldout"))
        .otherwise(pl.lit("train"))
    ).select(
        "campaign_id", "offer_category", "coupon_value", "start_date", "members", "role", "fault"
    )


def _curve_points(learner: str, y: np.ndarray, t: np.ndarray, score: np.ndarray) -> pl.DataFrame:
    x, q = qini_curve(y, t, score)
    grid = np.linspace(0, 1, 101)
    inc = np.interp(grid, x, q)
    return pl.DataFrame(
        {
            "learner": learner,
            "share_targeted": grid,
            "incremental_responses": inc,
            "random_incremental_responses": grid * q[-1],
        }
    )


def select_learner(
    training: pl.DataFrame,
    n_heldout: int = 3,
    learners: Sequence[str] = LEARNERS,
    seed: int = 7,
) -> Selection:
    """Compare `learners` and the response model on the last `n_heldout` learnable
    campaigns (by start date), each trained on the earlier learnable ones; choose the
    uplift learner with the highest Qini coefficient (ties: the first in `learners`).

    With fewer than two learnable campaigns nothing can be held out: every score is
    NaN and the first learner is chosen. Raises ValueError when no campaign is learnable.
    """
    roles = _campaign_roles(training, n_heldout)
    if roles.filter(pl.col("role") != "skipped").is_empty():
        raise ValueError("no learnable campaign: nothing to learn the uplift from")
    rows = training.join(roles.select("campaign_id", "role"), on="campaign_id")
    train, held = rows.filter(pl.col("role") == "train"), rows.filter(pl.col("role") == "heldout")
    held_ids = ",".join(roles.filter(pl.col("role") == "heldout")["campaign_id"].to_list())
    n_train = roles.filter(pl.col("role") == "train").height
    results, curves = [], []
    held_scores: dict[str, np.ndarray] = {}
    fit_rows, shared = train.drop("role"), {}  # every learner shares the encoded rows and arms
    for name in (*learners, RESPONSE):
        started = time.perf_counter()
        qini = area = float("nan")
        if not held.is_empty() and not train.is_empty():
            score = None
            if name == ENSEMBLE:  # the mean of the base learners' scores, nothing refitted
                parts = [held_scores[n] for n in BASE_LEARNERS if n in held_scores]
                score = np.mean(parts, axis=0) if len(parts) == len(BASE_LEARNERS) else None
            else:
                try:
                    score = UpliftModel(name, seed=seed).fit(fit_rows, shared).predict(held)
                except ValueError:
                    score = None
            if score is not None:
                held_scores[name] = score
                y = held["responded"].to_numpy().astype(np.float64)
                t = held["treated"].to_numpy().astype(bool)
                qini, area = qini_coefficient(y, t, score), auuc(y, t, score)
                curves.append(_curve_points(name, y, t, score))
        results.append(
            {
                "learner": name,
                "qini": qini,
                "auuc": area,
                "heldout_campaigns": held_ids,
                "train_campaigns": n_train,
                "heldout_rows": held.height,
                "fit_seconds": round(time.perf_counter() - started, 3),
            }
        )
    scores = pl.DataFrame(results)
    ranked = [
        r["learner"]
        for r in scores.filter(pl.col("learner").is_in(list(learners)))
        .with_columns(pl.col("qini").fill_nan(None))
        .sort("qini", descending=True, nulls_last=True, maintain_order=True)
        .iter_rows(named=True)
    ]
    chosen = ranked[0] if ranked else learners[0]
    scores = scores.with_columns(chosen=pl.col("learner") == chosen)
    curve_schema = {
        "learner": pl.String,
        "share_targeted": pl.Float64,
        "incremental_responses": pl.Float64,
        "random_incremental_responses": pl.Float64,
    }
    curves_frame = pl.concat(curves) if curves else pl.DataFrame(schema=curve_schema)
    return Selection(scores, curves_frame, roles, chosen)


# --- reasons ------------------------------------------------------------------------------
# feature -> (label zh, label en); the reason says whether the value is high or low
FEATURE_LABELS = {
    "promo_index": ("促销期购买占比", "buying on promotion (against the home store's promotions)"),
    "promo_scan_share": ("促销期扫码占比", "share of scans in promotion periods"),
    "offer_category_promo_share": ("该品类促销期购买占比", "promotion share in this category"),
    "coupon_order_share": ("用券下单占比", "share of orders paid with a coupon"),
    "coupon_redemption_rate": ("历史核销率", "past coupon redemption rate"),
    "coupons_redeemed": ("历史核券数", "coupons redeemed before"),
    "coupons_received": ("历史领券数", "coupons received before"),
    "held_out_purchase_rate": ("对照期购买率", "purchase rate when held out"),
    "offer_category_share": ("该品类扫码占比", "share of scans in this category"),
    "offer_category_scans": ("该品类扫码次数", "scans in this category"),
    "orders": ("下单频次", "order frequency"),
    "order_amount": ("消费金额", "spend"),
    "avg_order_amount": ("客单价", "average order"),
    "recency_days": ("距上次购买天数", "days since the last order"),
    "scans": ("扫码次数", "scans"),
    "evening_scan_share": ("晚间扫码占比", "share of evening scans"),
    "weekend_scan_share": ("周末扫码占比", "share of weekend scans"),
    "groups_joined": ("社群参与", "community groups joined"),
    "group_interactions": ("社群活跃度", "community group activity"),
    "referrals_made": ("裂变邀请数", "referrals made"),
    "tenure_days": ("注册时长", "time since registration"),
    "coupon_value": ("券面额", "coupon value"),
}
HIGH, LOW = ("高", "high"), ("低", "low")


def _sure_thing_free(frame: pl.DataFrame) -> np.ndarray:
    """Redeemed a past coupon and did not buy when held out: the coupon made the purchase."""
    return (
        (frame["coupons_redeemed"].fill_null(0) > 0)
        & (frame["times_held_out"].fill_null(0) > 0)
        & (frame["held_out_purchases"].fill_null(0) == 0)
    ).to_numpy()


def reasons(
    frame: pl.DataFrame, contributions: np.ndarray, columns: list[str], medians: dict[str, float]
) -> tuple[list[str], list[str]]:
    """The reason of each row in Chinese and English: the two features that raise its
    expected uplift most (positive contributions), each said as high or low against the
    eligible consumers' median (`medians`), led by 曾用券且对照组未购 when it applies.

    frame: the listed rows (features); contributions: (rows, len(columns)).
    """
    special = _sure_thing_free(frame) if "held_out_purchases" in frame.columns else None
    zh_out, en_out = [], []
    values = {c: frame[c].to_list() for c in columns if c in FEATURE_LABELS}
    for i in range(frame.height):
        zh, en = [], []
        if special is not None and special[i]:
            zh.append("曾用券且对照组未购")
            en.append("redeemed a coupon before and did not buy when held out")
        order = np.argsort(-contributions[i])
        for j in order:
            if len(zh) >= 2 or contributions[i, j] <= 0:
                break
            c = columns[j]
            if c not in values or values[c][i] is None:
                continue
            hi = values[c][i] >= medians.get(c, 0.0)
            label_zh, label_en = FEATURE_LABELS[c]
            zh.append(f"{label_zh}{(HIGH if hi else LOW)[0]}")
            en.append(f"{label_en}: {(HIGH if hi else LOW)[1]}")
        if not zh:
            zh, en = ["模型预测用券增量为正"], ["positive expected uplift from the coupon"]
        zh_out.append("；".join(zh))
        text = "; ".join(en)
        en_out.append(text[:1].upper() + text[1:])
    return zh_out, en_out


# --- lists --------------------------------------------------------------------------------
def holdout_draw(plan_id: str, consumer_ids: Sequence[str]) -> np.ndarray:
    """A stable uniform draw in [0, 1) per consumer, seeded by the plan id (blake2b of
    ``plan_id|consumer_id``): the same consumer lands in the same arm of a plan on every
    run, whatever else changes."""
    out = np.empty(len(consumer_ids))
    for i, cid in enumerate(consumer_ids):
        h = hashlib.blake2b(f"{plan_id}|{cid}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") / 2.0**64
    return out


def build_list(scores: pl.DataFrame, plan: CampaignPlan, margin_rate: float) -> pl.DataFrame:
    """The target list of one plan from its scored eligible consumers.

    scores: one row per consumer (consumer_id, consent_marketing, expected_cost,
    expected_incremental_revenue, yuan). Consumers are ranked by expected ROI
    (incremental revenue per yuan of expected coupon cost); a stable random share
    `plan.holdout_share` (`holdout_draw`) is the hold-out arm, interleaved at their rank
    and costing nothing. The list runs down the ranking while the target arm's summed
    expected cost stays within `plan.budget_yuan` and the next coupon still pays
    (margin_rate x incremental revenue > cost). A non-empty list of two or more always
    holds at least one hold-out consumer. Returns the listed rows with rank (1 = best)
    and arm ('target' | 'holdout'). Raises ValueError if a row lacks marketing consent.
    """
    if not scores.is_empty() and not scores["consent_marketing"].fill_null(False).all():
        raise ValueError(f"plan {plan.plan_id}: consumers without marketing consent to list")
    ranked = scores.with_columns(
        roi=pl.col("expected_incremental_revenue") / pl.col("expected_cost").clip(1e-6, None),
        _u=pl.Series(holdout_draw(plan.plan_id, scores["consumer_id"].to_list())),
    ).sort(["roi", "consumer_id"], descending=[True, False])
    target = ranked["_u"].to_numpy() >= plan.holdout_share
    cost = np.where(target, ranked["expected_cost"].to_numpy(), 0.0)
    pays = (
        margin_rate * ranked["expected_incremental_revenue"].to_numpy()
        > ranked["expected_cost"].to_numpy()
    )
    stop = target & ((np.cumsum(cost) > plan.budget_yuan + 1e-9) | ~pays)
    end = int(np.argmax(stop)) if stop.any() else ranked.height
    listed = ranked.head(end).with_columns(
        rank=pl.int_range(1, end + 1, dtype=pl.Int64),
        arm=pl.Series(np.where(target[:end], "target", "holdout"), dtype=pl.String),
    )
    if listed.height >= 2 and not (listed["arm"] == "holdout").any():
        pick = int(np.argmin(listed["_u"].to_numpy()))
        listed = listed.with_columns(
            arm=pl.when(pl.int_range(pl.len()) == pick)
            .then(pl.lit("holdout"))
            .otherwise(pl.col("arm"))
        )
    return listed.drop("_u")


# --- the whole run ------------------------------------------------------------------------
@dataclass
class MarketingResult:
    """What `plan_campaigns` returns: the ml tables (see the asset descriptions) and the
    run's facts for the materialisation metadata."""

    learner_scores: pl.DataFrame
    qini_curves: pl.DataFrame
    model_campaigns: pl.DataFrame
    scores: pl.DataFrame
    target_lists: pl.DataFrame
    plans: pl.DataFrame
    chosen: str
    fit_seconds: float


def expected_basket(responder_mean: float) -> pl.Expr:
    """Yuan a persuaded consumer is expected to spend in the window: the consumer's average
    order, shrunk towards `responder_mean` (past responders' mean amount per order in a
    campaign window) as if that mean were BASKET_PRIOR_ORDERS more orders."""
    n = pl.col("orders").fill_null(0).cast(pl.Float64)
    own = pl.col("avg_order_amount").fill_null(responder_mean)
    return (n * own + BASKET_PRIOR_ORDERS * responder_mean) / (n + BASKET_PRIOR_ORDERS)


LIST_COLUMNS = [
    "plan_id",
    "consumer_id",
    "rank",
    "arm",
    "expected_uplift",
    "expected_response",
    "expected_incremental_revenue",
    "expected_cost",
    "reason_zh",
    "reason_en",
    "offer_category",
    "coupon_value",
    "valid_from",
    "valid_to",
    "region_code",
    "distributor_code",
    "store_code",
    "city_tier",
    "age_band",
    "register_channel",
]


def plan_campaigns(
    training: pl.DataFrame,
    candidates: pl.DataFrame,
    plans: Sequence[CampaignPlan],
    margin_rate: float,
    n_heldout: int = 3,
    seed: int = 7,
) -> MarketingResult:
    """Select the learner, refit it on every learnable campaign and build each plan's list.

    training: marts.fct_campaign_uplift_training; candidates:
    marts.fct_marketing_candidates (one row per consented consumer x offer_category);
    plans: from `bclake.core.marketing.expand_plans`. The plans' coupons are valid from
    the day after the candidates' snapshot for `valid_days`. Raises ValueError when no
    campaign is learnable or a candidate lacks marketing consent.
    """
    started = time.perf_counter()
    if not candidates.is_empty() and not candidates["consent_marketing"].fill_null(False).all():
        raise ValueError("candidates without marketing consent: the candidates mart must filter")
    selection = select_learner(training, n_heldout=n_heldout, seed=seed)
    learn = training.filter("learnable")
    shared: dict = {}  # the two models share the encoded rows and the treated-arm model
    uplift = UpliftModel(selection.chosen, seed=seed).fit(learn, shared)
    response = UpliftModel(RESPONSE, seed=seed).fit(learn, shared)
    redeem = fit_classifier(learn, "redeemed_coupon", seed=seed + 4)
    responders = learn.filter(pl.col("treated") & pl.col("responded"))
    # per order, like the consumer's own avg_order_amount it is blended with
    per_order = responders["window_order_amount"] / responders["window_orders"].clip(1, None)
    responder_mean = float(per_order.mean() or 0.0) if responders.height else 0.0

    score_frames, list_frames, plan_rows = [], [], []
    for plan in plans:
        eligible = candidates.filter(pl.col("offer_category") == plan.category).with_columns(
            coupon_value=pl.lit(plan.coupon_value, dtype=pl.Float64)
        )
        snapshot = eligible["snapshot_date"].max() if eligible.height else None
        scored = eligible.with_columns(
            plan_id=pl.lit(plan.plan_id),
            uplift=pl.Series(uplift.predict(eligible) if eligible.height else [], dtype=pl.Float64),
            response=pl.Series(
                response.predict(eligible) if eligible.height else [], dtype=pl.Float64
            ),
            redeem_probability=pl.Series(
                redeem.predict(eligible) if eligible.height else [], dtype=pl.Float64
            ),
            expected_basket=expected_basket(responder_mean),
        ).with_columns(
            expected_cost=pl.col("coupon_value") * pl.col("redeem_probability"),
            expected_incremental_revenue=pl.col("uplift") * pl.col("expected_basket"),
        )
        score_frames.append(
            scored.select(
                "plan_id",
                "consumer_id",
                "offer_category",
                "coupon_value",
                "uplift",
                "response",
                "redeem_probability",
                "expected_basket",
                "expected_cost",
                "expected_incremental_revenue",
            )
        )
        listed = build_list(scored, plan, margin_rate)
        valid_from = snapshot + timedelta(days=1) if snapshot is not None else None
        valid_to = snapshot + timedelta(days=plan.valid_days) if snapshot is not None else None
        if listed.height:
            cols = uplift.encoder.columns
            medians = {
                c: float(eligible[c].cast(pl.Float64).median() or 0.0)
                for c in cols
                if c in FEATURE_LABELS
            }
            zh, en = reasons(listed, uplift.contributions(listed), cols, medians)
            listed = listed.with_columns(
                reason_zh=pl.Series(zh, dtype=pl.String), reason_en=pl.Series(en, dtype=pl.String)
            )
        else:
            listed = listed.with_columns(
                reason_zh=pl.lit(None, dtype=pl.String), reason_en=pl.lit(None, dtype=pl.String)
            )
        listed = listed.with_columns(
            expected_uplift=pl.col("uplift"),
            expected_response=pl.col("response"),
            valid_from=pl.lit(valid_from, dtype=pl.Date),
            valid_to=pl.lit(valid_to, dtype=pl.Date),
            region_code=pl.col("home_region"),
            distributor_code=pl.col("home_distributor_code"),
            store_code=pl.col("home_store_code"),
        ).select(LIST_COLUMNS)
        list_frames.append(listed)
        plan_rows.append(_plan_row(plan, scored, listed, valid_from, valid_to, selection.chosen))

    return MarketingResult(
        learner_scores=selection.scores,
        qini_curves=selection.curves,
        model_campaigns=selection.campaigns,
        scores=pl.concat(score_frames) if score_frames else pl.DataFrame(),
        target_lists=pl.concat(list_frames) if list_frames else pl.DataFrame(),
        plans=pl.DataFrame(plan_rows, infer_schema_length=None),
        chosen=selection.chosen,
        fit_seconds=round(time.perf_counter() - started, 2),
    )


def _plan_row(
    plan: CampaignPlan,
    scored: pl.DataFrame,
    listed: pl.DataFrame,
    valid_from: date | None,
    valid_to: date | None,
    learner: str,
) -> dict:
    """One row of ml.marketing_plans: the list's size, expected money and ROI, and the
    ROI a random list of the same consumers would expect (incremental revenue per yuan of
    expected coupon cost; equal budget leaves the ratio unchanged)."""
    target = listed.filter(pl.col("arm") == "target")
    cost = float(target["expected_cost"].sum()) if target.height else 0.0
    revenue = float(target["expected_incremental_revenue"].sum()) if target.height else 0.0
    all_cost = float(scored["expected_cost"].sum()) if scored.height else 0.0
    all_revenue = float(scored["expected_incremental_revenue"].sum()) if scored.height else 0.0
    return {
        "plan_id": plan.plan_id,
        "name_zh": plan.name_zh,
        "name_en": plan.name_en,
        "category": plan.category,
        "coupon_value": plan.coupon_value,
        "budget_yuan": plan.budget_yuan,
        "holdout_share": plan.holdout_share,
        "valid_days": plan.valid_days,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "learner": learner,
        "eligible": scored.height,
        "list_size": listed.height,
        "targets": target.height,
        "holdout": listed.height - target.height,
        "expected_cost": cost,
        "expected_incremental_revenue": revenue,
        "expected_incremental_responses": float(target["expected_uplift"].sum())
        if target.height
        else 0.0,
        "expected_roi": revenue / cost if cost > 0 else None,
        "expected_roi_random": all_revenue / all_cost if all_cost > 0 else None,
        "budget_bound": cost > 0.95 * plan.budget_yuan,
    }
