"""A global LightGBM forecaster over any long sales table.

API in the spirit of mlforecast: `fit(df)`, `predict()`, `cross_validation(df)`.
The input is long: series key columns, a date column, a target column (see `fit`).

Multi-horizon strategy: *direct, pooled over horizons*. Each training row is
(series, origin, h): features known at the origin (lags and rolling statistics
of the target up to the origin, the same-season value one year before the
target date, calendar of the target period, the horizon h, the series keys as
categoricals; `bclake.ml.panel.FeatureSpec`) and the target value h periods after
the origin. One model per quantile learns all horizons at once, so no forecast
feeds on another forecast, and nothing after the origin can leak into a feature.

Series are put on a common scale by their mean over the last `level_window`
periods at the origin, so one model serves large and small series alike.

Exogenous columns come in two kinds. `future_cols` are known in advance (price,
promotion, events): the model sees their value in the target period, so
`predict` needs them for the horizon. `hist_cols` are only known once they
happen (scans, stock): the model sees them at the origin and over the last four
periods. String columns are categorical.

Boosting rounds scale with the data: each quantile's model is first fitted with early
stopping on a time-ordered split (it learns from the panel as known `horizon` periods
before its end and is judged on its forecasts of the last `horizon` periods, from every
origin, for the series old enough to scale; `early_stopping_rounds` rounds without improvement
of that pinball loss end it, `num_boost_round` is the ceiling), and the final model is
refitted on everything with the number of rounds that scored best. A small or noisy
table stops after a few dozen rounds; a large one runs to the ceiling as before.
With conformal bands the early-stopped fit is the calibration fit: it learns from the
panel as known `horizon` periods before its end, is stopped on its forecasts of the
last `horizon` periods and scored on those made from just before them, so calibration
costs no extra fit. Rounds are
chosen only with more than a season of history before those periods; a shorter table
trains to the ceiling.

Intervals: the quantile models' P10-P90 band is calibrated by split conformal
prediction (CQR): the model is also fitted without the last `horizon` periods,
its band is scored on them, and every horizon's band is widened (or narrowed)
by the conformity quantile that gives the nominal coverage, in level-scaled units
(scale-free: a series' residual is divided by its own level at the cutoff). Only
series with at least `n_lags` observed periods by the calibration cutoff are scored,
and only on periods with an actual: a series launched after the cutoff (no level to
scale by), a one-row new item or a gap left missing never widens the band of the
others.

Training runs in this process (`backend="local"`) or on a Dask cluster
(`backend="dask"`, default from `BCLAKE_TRAIN_BACKEND`; `bclake.ml.dask_backend`): the same
features, parameters and round choice, and plain LightGBM boosters either way, so
`predict` and everything after it do not depend on where the models were trained.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from bclake.core.cpus import threads_for
from bclake.core.progress import Task, track
from bclake.ml import dask_backend
from bclake.ml.baselines import baselines, seasonal_naive_mae
from bclake.ml.dask_backend import Backend, check_backend
from bclake.ml.panel import (
    SEASON,
    Calendar,
    FeatureSpec,
    Fill,
    Freq,
    Panel,
    check_calendar,
    check_fill,
    check_freq,
    encode_categories,
    period_date,
    period_start,
    periods_since,
    to_panel,
)

DEFAULT_PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 0,  # 0: `core.cpus.model_threads()` at fit time
    "seed": 7,
    "deterministic": True,  # the same table gives the same forecast
    "force_row_wise": True,
}


QuantileFit = Callable[[float, int], tuple[lgb.Booster, int | None]]
"""Trains quantile q's model (`n_rounds` rounds unless it is early-stopped): (booster, the
rounds early stopping chose, or None)."""


def quantile_name(q: float) -> str:
    """The column of quantile q in every forecast table: 0.1 -> "p10", 0.05 -> "p05"."""
    return f"p{round(q * 100):02d}"


@dataclass
class LGBMForecaster:
    """Global quantile LightGBM forecaster (direct, pooled horizons, conformal bands).

    Construction raises ValueError for a `freq`, `calendar`, `fill` or `backend` outside
    `Freq` / `Calendar` / `Fill` / `Backend`, a `horizon` below 1 or a quantile outside
    (0, 1).

    `backend` is where `fit` trains the models: "local" (this process) or "dask" (a Dask
    cluster, `bclake.ml.dask_backend`); its default is `BCLAKE_TRAIN_BACKEND`, else
    "local". With "dask", `dask_address` (default `BCLAKE_DASK_ADDRESS`) is the scheduler
    to use, e.g. "tcp://scheduler:8786"; None starts a `distributed.LocalCluster` for each
    `fit` and closes it after.
    """

    id_cols: list[str]
    date_col: str
    target_col: str
    horizon: int = 13  # periods ahead
    freq: Freq = "W"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    future_cols: tuple[str, ...] = ()
    hist_cols: tuple[str, ...] = ()
    conformal: bool = True
    calendar: Calendar = "cn"
    fill: Fill = "zero"  # a period missing inside a series' life: 0 sold, or unknown (NaN)
    n_lags: int = 8
    level_window: int = 13
    num_boost_round: int = 300  # the ceiling; early stopping picks the rounds below it
    early_stopping_rounds: int | None = 20  # None: always `num_boost_round` rounds
    # training rows (series x origins x horizons) are capped by thinning origins evenly,
    # always keeping the latest: bounded memory and time on thousands of long series
    max_train_rows: int = 1_000_000
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    label: str = "forecast"  # names the model in progress lines ("region × SKU forecast")
    # where fit trains: "local" or "dask"; the default is BCLAKE_TRAIN_BACKEND, else local
    backend: Backend = field(
        default_factory=lambda: os.environ.get("BCLAKE_TRAIN_BACKEND") or "local"
    )
    dask_address: str | None = field(
        default_factory=lambda: os.environ.get("BCLAKE_DASK_ADDRESS") or None
    )
    models_: dict[float, lgb.Booster] = field(default_factory=dict, init=False, repr=False)
    feature_names_: list[str] = field(default_factory=list, init=False, repr=False)
    panel_: Panel | None = field(default=None, init=False, repr=False)
    categories_: dict[str, dict[str, int]] = field(default_factory=dict, init=False, repr=False)
    # per horizon: how far to move the outer quantiles, in level-scaled units
    widen_: np.ndarray | None = field(default=None, init=False, repr=False)
    rounds_: dict[float, int] = field(default_factory=dict, init=False, repr=False)
    _client: Any = field(default=None, init=False, repr=False, compare=False)  # during fit

    def __post_init__(self) -> None:
        self.freq = check_freq(self.freq)
        self.calendar = check_calendar(self.calendar)
        self.fill = check_fill(self.fill)
        self.backend = check_backend(self.backend)
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 period, not {self.horizon}")
        if self.early_stopping_rounds is not None and self.early_stopping_rounds < 1:
            raise ValueError(
                f"early_stopping_rounds must be at least 1 (or None: no early stopping), not "
                f"{self.early_stopping_rounds}"
            )
        if not all(0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must lie strictly between 0 and 1: {self.quantiles}")

    @property
    def season(self) -> int:
        """Periods per season: 7 days, 52 weeks, 12 months or 4 quarters."""
        return SEASON[self.freq]

    @property
    def exog_cols(self) -> list[str]:
        return [*self.future_cols, *self.hist_cols]

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features this model reads (string exogenous columns seen by `fit` are
        categorical)."""
        return FeatureSpec(
            id_cols=tuple(self.id_cols),
            freq=self.freq,
            calendar=self.calendar,
            future_cols=tuple(self.future_cols),
            hist_cols=tuple(self.hist_cols),
            categorical=frozenset(self.categories_),
            n_lags=self.n_lags,
            level_window=self.level_window,
        )

    # --- API ----------------------------------------------------------------------
    def fit(self, df: pl.DataFrame) -> LGBMForecaster:
        """Train the quantile models on every series of a long table; returns self.

        `df` has one row per series and period (several rows of one period are
        summed):

        - `id_cols`: the series keys (any type; a series is one combination of them);
        - `date_col`: a date (or datetime, cast to its date), the start of the
          period; periods are `freq` apart (weeks starting on the same weekday;
          months and quarters on their first day, and a date inside one counts for it);
        - `target_col`: a number, the quantity in its own units per period
          (units sold, cases, value). A period missing inside a series' life counts
          as 0 (`fill="zero"`) or stays unknown (`fill="missing"`: not a target, a
          missing lag);
        - every column of `future_cols` and `hist_cols`: numbers (averaged within a
          period) or strings / booleans (categorical).

        Forecasts come back in the target's units per period. Raises ValueError when
        a column is missing, the target is not numeric, the table is empty or no
        series has two periods to learn from (an origin and a target after it).
        """
        self._check_table(df)
        df, self.categories_ = encode_categories(df, self.exog_cols, {})
        panel = to_panel(
            df, self.id_cols, self.date_col, self.target_col, self.freq, self.exog_cols, self.fill
        )
        rounds: dict[float, int] = {}
        widen = None
        n = panel.values.shape[1]
        calibrate = self.conformal and self._can_calibrate(n)
        # rounds are chosen only with more than a season of history before the split
        early = self.early_stopping_rounds is not None and self._can_calibrate(n, quantiles=1)
        fits = len(self.quantiles) * (2 if calibrate or early else 1)
        description = f"{self.label}: fit {panel.values.shape[0]:,} series"
        with track(description, total=fits, unit="fits") as task, self._backend_session():
            if calibrate:
                widen, rounds = self._calibrate(panel, task)
            elif early:
                _, _, rounds = self._train(panel, valid_from=n - self.horizon, task=task)
            # the final fit: every period, with the rounds that scored best (or the ceiling)
            models, names, _ = self._train(panel, rounds=rounds, task=task)
        self.models_, self.feature_names_, self.widen_ = models, names, widen
        self.rounds_ = {q: rounds.get(q, self.num_boost_round) for q in self.quantiles}
        self.panel_ = panel
        return self

    def predict(self, future: pl.DataFrame | None = None) -> pl.DataFrame:
        """Quantile forecasts for the `horizon` periods after the last observed one.

        `future` holds the id columns, the date column and every `future_cols`
        column for each series and horizon period (required when `future_cols` is
        not empty). Returns the id columns, the date column, `horizon` (1..horizon)
        and one column per quantile (`quantile_name`: p10, p50, p90), non-negative
        and ordered, in the target's units per period. Raises RuntimeError before
        `fit`, ValueError when `future` is needed but missing or lacks a column.
        """
        if self.panel_ is None:
            raise RuntimeError("call fit() before predict()")
        panel = self._with_future(self.panel_, future)
        origin = self.panel_.values.shape[1] - 1
        scaled, level = self._predict_scaled(panel, self.models_, self.feature_names_, origin)
        if self.widen_ is not None:
            scaled[:, :, 0] -= self.widen_[None, :]
            scaled[:, :, -1] += self.widen_[None, :]
            scaled = np.sort(scaled, axis=2)
        preds = np.maximum(0.0, scaled * level[:, None, None])
        frames = []
        for h in range(1, self.horizon + 1):
            frame = panel.keys.with_columns(
                pl.lit(period_date(panel, origin + h, self.freq)).alias(self.date_col),
                pl.lit(h).alias("horizon"),
            )
            for i, q in enumerate(self.quantiles):
                frame = frame.with_columns(pl.Series(quantile_name(q), preds[:, h - 1, i]))
            frames.append(frame)
        return pl.concat(frames).sort(*self.id_cols, self.date_col)

    def cross_validation(
        self, df: pl.DataFrame, n_windows: int = 1, step: int | None = None
    ) -> pl.DataFrame:
        """Rolling-origin backtest: refit at each cutoff and forecast the next `horizon` periods.

        `df` is the long table `fit` takes, with the actuals of the held-out periods
        (and their known-in-advance columns). Cutoffs are `step` periods apart
        (default: `horizon`), the last one `horizon` periods before the table's end.
        Returns the id columns, date, cutoff, horizon, actual (`y`), the model's
        quantiles and the baselines (`bclake.ml.baselines.BASELINES`), plus
        `mase_scale` (the series' in-sample seasonal-naive MAE) for MASE; rows without
        an actual or a forecast (a series born after its cutoff) are left out.
        Raises ValueError as `fit` does, and when a window has no more than a season
        of history before its cutoff.
        """
        self._check_table(df)
        step = step or self.horizon
        encoded, _ = encode_categories(df, self.exog_cols, {})
        panel = to_panel(
            encoded,
            self.id_cols,
            self.date_col,
            self.target_col,
            self.freq,
            self.exog_cols,
            self.fill,
        )
        n = panel.values.shape[1]
        out = []
        cutoffs = [n - 1 - self.horizon - (n_windows - 1 - w) * step for w in range(n_windows)]
        for w, cutoff in enumerate(cutoffs):
            if cutoff < self.season:
                raise ValueError(
                    f"not enough history for window {w}: need more than "
                    f"{self.season + self.horizon} periods, have {n}"
                )
        progress = track(f"{self.label}: backtest", total=n_windows, unit="origins")
        with progress as task, self._backend_session():  # one Dask cluster for every window
            for cutoff in cutoffs:
                out.append(self._backtest_window(df, panel, cutoff))
                task.advance(note=f"origin {period_date(panel, cutoff, self.freq)}")
        # a series born after a cutoff has neither history nor a forecast at it: cold start
        return pl.concat(out).filter(
            pl.col("y").is_not_null() & pl.col("y").is_not_nan() & pl.col("p50").is_not_null()
        )

    # --- internals ----------------------------------------------------------------
    def _check_table(self, df: pl.DataFrame) -> None:
        needed = [*self.id_cols, self.date_col, self.target_col, *self.exog_cols]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ValueError(f"the table lacks columns {missing}; it has {df.columns}")
        if not df.schema[self.target_col].is_numeric():
            raise ValueError(
                f"target column {self.target_col!r} is {df.schema[self.target_col]}, not a number"
            )
        if df.is_empty():
            raise ValueError("the table has no rows")

    def _backtest_window(self, df: pl.DataFrame, panel: Panel, cutoff: int) -> pl.DataFrame:
        """Refit on the periods up to `cutoff`, forecast after it, next to the baselines."""
        cutoff_date = period_date(panel, cutoff, self.freq)
        start = period_start(pl.col(self.date_col).cast(pl.Date), self.freq)
        train = df.filter(start <= cutoff_date)
        model = dataclasses.replace(self)  # same settings, unfitted
        model._client = self._client  # the backtest's Dask cluster, if any
        model.fit(train)
        future = (
            df.filter(start > cutoff_date).select(*self.id_cols, self.date_col, *self.future_cols)
            if self.future_cols
            else None
        )
        fc = model.predict(future)
        truth = panel.values[:, cutoff + 1 : cutoff + 1 + self.horizon]
        hist = panel.values[:, : cutoff + 1]
        base = baselines(hist, self.horizon, self.season)
        scale = seasonal_naive_mae(hist, self.season)
        long = [
            panel.keys.with_columns(
                pl.lit(period_date(panel, cutoff + 1 + h, self.freq)).alias(self.date_col),
                pl.lit(cutoff_date).alias("cutoff"),
                pl.lit(h + 1).alias("horizon"),
                pl.Series("y", truth[:, h]),
                *[pl.Series(name, b[:, h]) for name, b in base.items()],
                pl.Series("mase_scale", scale),
            )
            for h in range(self.horizon)
        ]
        return pl.concat(long).join(
            fc.drop("horizon"), on=[*self.id_cols, self.date_col], how="left"
        )

    def _origins(self, n_series: int, n_periods: int, h: int) -> np.ndarray:
        """Training origins for horizon h: all of them, or every k-th back from the latest."""
        origins = np.arange(0, n_periods - h)
        budget = max(1, self.max_train_rows // (self.horizon * max(n_series, 1)))
        if len(origins) > budget:
            stride = int(np.ceil(len(origins) / budget))
            origins = origins[::-1][::stride][::-1]
        return origins

    def _rows(
        self,
        panel: Panel,
        spec: FeatureSpec,
        origins_at: Callable[[int], np.ndarray],
        series: np.ndarray | None = None,
    ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
        """Per horizon h (1..horizon) with origins `origins_at(h)`: (feature columns,
        target, level) of the rows of every series (or only those `series` marks) from
        those origins whose target and level are known."""
        n_series = panel.values.shape[0]
        for h in range(1, self.horizon + 1):
            origins = origins_at(h)
            if not len(origins):  # no period lies h after an origin
                continue
            cols, level = spec.build(panel, origins, h)
            rows_s = np.repeat(np.arange(n_series), len(origins))
            target = panel.values[rows_s, np.tile(origins, n_series) + h]
            keep = ~np.isnan(target) & ~np.isnan(level)
            if series is not None:
                keep &= series[rows_s]
            yield {k: v[keep] for k, v in cols.items()}, target[keep], level[keep]

    def _training_rows(
        self, panel: Panel, spec: FeatureSpec
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(feature columns, target, level), one entry per row; raises ValueError when no
        series has an origin and a later period."""
        n_series, n = panel.values.shape
        parts, targets, levels = [], [], []
        for cols, target, level in self._rows(panel, spec, lambda h: self._origins(n_series, n, h)):
            parts.append({k: v.astype(np.float32) for k, v in cols.items()})
            targets.append(target)
            levels.append(level)
        if not sum(len(t) for t in targets):
            raise ValueError(
                "nothing to learn from: no series has two periods of history (an origin "
                "and a later period to forecast)"
            )
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return cols, np.concatenate(targets), np.concatenate(levels)

    def _validation_rows(
        self, panel: Panel, spec: FeatureSpec, cutoff: int, names: list[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(feature matrix, level-scaled target) of every forecast whose target lies after
        `cutoff` (up to `horizon` ahead of its origin, from any origin), for the series
        the conformal step scores (at least `n_lags` observed periods by `cutoff`); None
        when there is no such row. Series x horizon x (horizon + 1) / 2 rows at most."""
        n = panel.values.shape[1]
        scored = (~np.isnan(panel.values[:, : cutoff + 1])).sum(axis=1) >= self.n_lags
        matrices, labels = [], []
        for cols, target, level in self._rows(
            panel, spec, lambda h: np.arange(max(0, cutoff + 1 - h), n - h), scored
        ):
            matrices.append(np.column_stack([cols[c] for c in names]).astype(np.float32))
            labels.append(target / level)
        if not sum(len(y) for y in labels):
            return None
        return np.concatenate(matrices), np.concatenate(labels)

    def _train(
        self,
        panel: Panel,
        rounds: dict[float, int] | None = None,
        valid_from: int | None = None,
        task: Task | None = None,
    ) -> tuple[dict[float, lgb.Booster], list[str], dict[float, int]]:
        """(one booster per quantile, feature names, best rounds per quantile).

        `rounds` fixes each quantile's rounds (default `num_boost_round`). With
        `valid_from` (a period index) the models learn from the panel as it was known at
        `valid_from - 1` (so origins are thinned from there, as for a forecast made then)
        and, when `early_stopping_rounds` is set, each stops early on its pinball loss over
        the forecasts of the periods from `valid_from` on (`_validation_rows`); the best
        rounds are returned.
        They are empty when no model was early-stopped (no `valid_from`, early stopping
        off, or no series old enough to judge). Raises ValueError when nothing lies before
        `valid_from` to learn from."""
        spec = self.feature_spec
        learn = panel if valid_from is None else panel.until(valid_from - 1)
        cols, target, level = self._training_rows(learn, spec)
        names = list(cols)
        matrix = np.column_stack([cols.pop(n) for n in names])
        valid = None
        if valid_from is not None and self.early_stopping_rounds is not None:
            valid = self._validation_rows(panel, spec, valid_from - 1, names)
        trainer = self._dask_trainer if self.backend == "dask" else self._local_trainer
        fit_quantile = trainer(
            matrix, target / level, names, spec.categorical_features(names), valid
        )
        del matrix  # the trainer holds its own copy (a LightGBM Dataset, the workers' blocks)
        models, best = {}, {}
        for q in self.quantiles:
            models[q], best_q = fit_quantile(q, (rounds or {}).get(q, self.num_boost_round))
            if best_q is not None:
                best[q] = best_q
            if task is not None:
                task.advance(note=f"{quantile_name(q)}, {models[q].num_trees()} rounds")
        return models, names, best

    def _quantile_params(self, q: float, threads: int) -> dict[str, Any]:
        return {
            **self.params,
            "objective": "quantile",
            "alpha": q,
            "metric": "quantile",
            "num_threads": threads,
        }

    def _local_trainer(
        self,
        matrix: np.ndarray,
        label: np.ndarray,
        names: list[str],
        categorical: list[str],
        valid: tuple[np.ndarray, np.ndarray] | None,
    ) -> QuantileFit:
        """Fits in this process: the rows binned once and shared by every quantile's model,
        early-stopped by LightGBM on `valid` when given."""
        threads = threads_for(self.params.get("num_threads"), len(label))
        binning = {
            "verbose": -1,
            "max_bin": self.params.get("max_bin", 255),
            "num_threads": threads,
        }
        data = lgb.Dataset(
            matrix,
            label=label,
            feature_name=names,
            categorical_feature=categorical,
            params=binning,
        ).construct()
        valid_set = None
        if valid is not None:
            valid_set = lgb.Dataset(
                valid[0],
                label=valid[1],
                reference=data,
                feature_name=names,
                categorical_feature=categorical,
                params=binning,
            ).construct()

        def fit_quantile(q: float, n_rounds: int) -> tuple[lgb.Booster, int | None]:
            params = self._quantile_params(q, threads)
            if valid_set is None:
                return lgb.train(params, data, num_boost_round=max(1, n_rounds)), None
            model = lgb.train(
                params,
                data,
                num_boost_round=self.num_boost_round,
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            return model, model.best_iteration or self.num_boost_round

        return fit_quantile

    def _dask_trainer(
        self,
        matrix: np.ndarray,
        label: np.ndarray,
        names: list[str],
        categorical: list[str],
        valid: tuple[np.ndarray, np.ndarray] | None,
    ) -> QuantileFit:
        """Fits on the Dask cluster of this `fit` (`bclake.ml.dask_backend`): the rows sent
        to the workers once and shared by every quantile's model, early-stopped on `valid`
        (held by every worker) when given."""
        if self._client is None:
            raise RuntimeError("a Dask fit runs inside fit(), which opens the cluster")
        blocks = dask_backend.scatter_rows(self._client, matrix, label, valid)

        def fit_quantile(q: float, n_rounds: int) -> tuple[lgb.Booster, int | None]:
            early = valid is not None and self.early_stopping_rounds is not None
            fit = dask_backend.BlockFit(
                params=self._quantile_params(q, 0),  # each worker uses its own threads
                n_rounds=max(1, self.num_boost_round if early else n_rounds),
                patience=self.early_stopping_rounds if early else None,
                names=names,
                categorical=categorical,
                machines=None,
            )
            booster, best = dask_backend.fit_booster(blocks, fit)
            return booster, (best or self.num_boost_round) if early else None

        return fit_quantile

    @contextmanager
    def _backend_session(self) -> Iterator[None]:
        """Opens the Dask cluster (`dask_address`, else a LocalCluster of one worker per
        thread a fit may use) for the length of a `fit` or a backtest; nothing for the local
        backend, or when one is open already (a backtest's refits share its cluster)."""
        if self.backend != "dask" or self._client is not None:
            yield
            return
        threads = threads_for(self.params.get("num_threads"))
        with dask_backend.dask_client(self.dask_address, threads) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    def _predict_scaled(
        self, panel: Panel, models: dict[float, lgb.Booster], names: list[str], origin: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(series x horizon x quantile) predictions in level units, and the level per series."""
        spec = self.feature_spec
        out = np.zeros((panel.values.shape[0], self.horizon, len(self.quantiles)))
        level = np.ones(panel.values.shape[0])
        threads = threads_for(self.params.get("num_threads"), panel.values.shape[0])
        for h in range(1, self.horizon + 1):
            cols, level = spec.build(panel, np.array([origin]), h)
            matrix = np.column_stack([cols[n] for n in names])
            for i, q in enumerate(self.quantiles):
                out[:, h - 1, i] = models[q].predict(matrix, num_threads=threads)
        return np.sort(out, axis=2), np.nan_to_num(level, nan=1.0)

    def _can_calibrate(self, n_periods: int, quantiles: int = 2) -> bool:
        """Whether a fit can be judged on the last `horizon` periods: at least `quantiles`
        quantiles (two for a band) and more than a season of history before them."""
        return len(self.quantiles) >= quantiles and n_periods - 1 - self.horizon > self.season

    def _calibrate(
        self, panel: Panel, task: Task | None = None
    ) -> tuple[np.ndarray, dict[float, int]]:
        """(split-conformal widening per horizon, best rounds per quantile) from a fit on the
        panel as known `horizon` periods before its end, early-stopped (unless that is off:
        no rounds) on its forecasts of the last `horizon` periods, from every origin, of
        which the band is scored on those from that cutoff. Choosing the rounds on the
        periods the band is scored on can narrow it slightly (BENCHMARKS.md gives the
        coverage reached); holding out an earlier window instead would score a model
        `horizon` periods staler than the one it stands for, and cost another fit."""
        n = panel.values.shape[1]
        cutoff = n - 1 - self.horizon
        models, names, rounds = self._train(panel, valid_from=cutoff + 1, task=task)
        scaled, level = self._predict_scaled(panel, models, names, cutoff)
        actual = panel.values[:, cutoff + 1 : cutoff + 1 + self.horizon] / level[:, None]
        lo, hi = scaled[:, :, 0], scaled[:, :, -1]
        score = np.maximum(lo - actual, actual - hi)  # > 0 outside the band
        # a series too young at the cutoff has no level to scale by (a one-row launch
        # would score its raw units): it must not set the band of every other series
        observed = (~np.isnan(panel.values[:, : cutoff + 1])).sum(axis=1)
        score[observed < self.n_lags] = np.nan
        alpha = self.quantiles[0] + 1 - self.quantiles[-1]
        widen = np.zeros(self.horizon)
        for h in range(self.horizon):
            s = score[:, h][~np.isnan(score[:, h])]
            if len(s):
                level_q = min(1.0, np.ceil((len(s) + 1) * (1 - alpha)) / len(s))
                widen[h] = np.quantile(s, level_q)
        return widen, rounds

    def _with_future(self, panel: Panel, future: pl.DataFrame | None) -> Panel:
        """The panel with the known-in-advance columns filled in for the horizon."""
        if not self.future_cols:
            return panel
        if future is None:
            raise ValueError(
                f"the model uses known-in-advance columns {list(self.future_cols)}: pass their "
                f"values for the {self.horizon} periods after {panel.dates[-1]} as `future`"
            )
        missing = [c for c in (*self.id_cols, self.date_col, *self.future_cols) if c not in future]
        if missing:
            raise ValueError(f"the future table lacks columns {missing}")
        n = panel.values.shape[1]
        future, _ = encode_categories(
            future.with_columns(pl.col(self.date_col).cast(pl.Date)),
            list(self.future_cols),
            self.categories_,
        )
        future = future.join(
            panel.keys.with_row_index("_series"), on=self.id_cols, how="inner"
        ).with_columns(periods_since(pl.col(self.date_col), panel.dates[0], self.freq).alias("_t"))
        future = future.filter((pl.col("_t") >= n) & (pl.col("_t") < n + self.horizon))
        exog = dict(panel.exog)
        for c in self.future_cols:
            x = np.concatenate([panel.exog[c], np.full((len(panel.keys), self.horizon), np.nan)], 1)
            x[future["_series"].to_numpy(), future["_t"].to_numpy()] = future[c].to_numpy()
            exog[c] = x
        return Panel(panel.keys, panel.dates, panel.values, exog)
