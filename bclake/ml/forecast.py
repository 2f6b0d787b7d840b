"""A global LightGBM forecaster over any long sales table.

API in the spirit of mlforecast: `fit(df)`, `predict()`, `cross_validation(df)`.
The input is long: series key columns, a date column, a target column.

Multi-horizon strategy: *direct, pooled over horizons*. Each training row is
(series, origin, h): features known at the origin (lags and rolling statistics
of the target up to the origin, the same-season value one year before the
target date, calendar of the target period, the horizon h, the series keys as
categoricals) and the target value h periods after the origin. One model per
quantile learns all horizons at once, so no forecast feeds on another
forecast, and nothing after the origin can leak into a feature.

Series are put on a common scale by their mean over the last `level_window`
periods at the origin, so one model serves large and small series alike.

Exogenous columns come in two kinds. `future_cols` are known in advance (price,
promotion, events): the model sees their value in the target period, so
`predict` needs them for the horizon. `hist_cols` are only known once they
happen (scans, stock): the model sees them at the origin and over the last four
periods. String columns are categorical.

Intervals: the quantile models' P10-P90 band is calibrated by split conformal
prediction (CQR): the model is also fitted without the last `horizon` periods,
its band is scored on them, and every horizon's band is widened (or narrowed)
by the conformity quantile that gives the nominal coverage, in level-scaled units.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import polars as pl

from bclake.core.calendar import period_calendar_features

FREQ_DAYS = {"D": 1, "W": 7}
SEASON = {"D": 7, "W": 52}
CAL_FEATURES = ["holiday_days", "makeup_workdays", "festival_days", "days_to_spring_festival"]


@dataclass
class Panel:
    """A long table laid out as a dense series x period matrix (NaN before a series starts)."""

    keys: pl.DataFrame  # one row per series, the id columns
    dates: list[date]  # period starts, evenly spaced
    values: np.ndarray  # series x periods
    exog: dict[str, np.ndarray] = field(default_factory=dict)  # series x periods (+ horizon)

    def until(self, index: int) -> Panel:
        """The panel as it was known at period `index` (exogenous columns cut there too)."""
        return Panel(
            self.keys,
            self.dates[: index + 1],
            self.values[:, : index + 1],
            {c: x[:, : index + 1] for c, x in self.exog.items()},
        )


def encode_categories(
    df: pl.DataFrame, columns: list[str], known: dict[str, dict[str, int]]
) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
    """String columns -> integer codes (stable across fit and predict; unseen -> NaN)."""
    known = dict(known)
    out = []
    for c in columns:
        if df.schema[c] in (pl.String, pl.Categorical, pl.Boolean):
            values = df[c].cast(pl.String)
            if c not in known:
                known[c] = {v: i for i, v in enumerate(sorted(values.drop_nulls().unique()))}
            mapping = known[c]
            out.append(values.replace_strict(mapping, default=None, return_dtype=pl.Float64))
        else:
            out.append(df[c].cast(pl.Float64))
    return df.with_columns(out), known


def to_panel(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: str,
    exog_cols: list[str] | None = None,
) -> Panel:
    """Dense panel; exogenous columns (already numeric) are averaged within a period."""
    step = FREQ_DAYS[freq]
    exog_cols = exog_cols or []
    # one lazy query: the per-period sums, then only integer positions and numbers leave it
    periods = (
        df.lazy()
        .select(
            *id_cols,
            pl.col(date_col).cast(pl.Date),
            pl.col(target_col).cast(pl.Float64),
            *[pl.col(c).cast(pl.Float64) for c in exog_cols],
        )
        .group_by(*id_cols, date_col)
        .agg(pl.col(target_col).sum(), *[pl.col(c).mean() for c in exog_cols])
        .collect()
    )
    first, last = periods[date_col].min(), periods[date_col].max()
    n = (last - first).days // step + 1
    dates = [first + timedelta(days=step * i) for i in range(n)]
    keys = periods.select(id_cols).unique().sort(id_cols).with_row_index("_series")
    df = (
        periods.lazy()
        .join(keys.lazy(), on=id_cols)
        .select(
            "_series",
            ((pl.col(date_col) - pl.lit(first)).dt.total_days() // step).alias("_t"),
            target_col,
            *exog_cols,
        )
        .collect()
    )
    del periods
    rows, cols = df["_series"].to_numpy(), df["_t"].to_numpy()
    values = np.full((keys.height, n), np.nan)
    values[rows, cols] = df[target_col].to_numpy()
    # inside a series' life a missing period means nothing sold
    started = np.maximum.accumulate(~np.isnan(values), axis=1)
    values = np.where(started & np.isnan(values), 0.0, values)
    exog = {}
    for c in exog_cols:
        x = np.full((keys.height, n), np.nan)
        x[rows, cols] = df[c].to_numpy()
        exog[c] = x
    return Panel(keys.drop("_series"), dates, values, exog)


DEFAULT_PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 7,
    "deterministic": True,  # the same table gives the same forecast
    "force_row_wise": True,
}


@dataclass
class LGBMForecaster:
    """Global quantile LightGBM forecaster (direct, pooled horizons, conformal bands)."""

    id_cols: list[str]
    date_col: str
    target_col: str
    horizon: int = 13
    freq: str = "W"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    future_cols: tuple[str, ...] = ()
    hist_cols: tuple[str, ...] = ()
    conformal: bool = True
    # "cn": Chinese public holidays, make-up working days, 618 / Double 11 and days to
    # Spring Festival as features of the target period; "none" for other markets (pass
    # their holidays as a known-in-advance column)
    calendar: str = "cn"
    n_lags: int = 8
    level_window: int = 13
    num_boost_round: int = 300
    # training rows (series x origins x horizons) are capped by thinning origins evenly,
    # always keeping the latest: bounded memory and time on thousands of long series
    max_train_rows: int = 1_000_000
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    models_: dict[float, lgb.Booster] = field(default_factory=dict, init=False, repr=False)
    panel_: Panel | None = field(default=None, init=False, repr=False)
    categories_: dict[str, dict[str, int]] = field(default_factory=dict, init=False, repr=False)
    # per horizon: how far to move the outer quantiles, in level-scaled units
    widen_: np.ndarray | None = field(default=None, init=False, repr=False)

    # --- features -----------------------------------------------------------------
    @property
    def season(self) -> int:
        return SEASON[self.freq]

    @property
    def exog_cols(self) -> list[str]:
        return [*self.future_cols, *self.hist_cols]

    def _features(self, panel: Panel, origins: np.ndarray, h: int) -> tuple[dict, np.ndarray]:
        with warnings.catch_warnings():  # all-NaN windows before a series starts are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._features_unchecked(panel, origins, h)

    def _features_unchecked(
        self, panel: Panel, origins: np.ndarray, h: int
    ) -> tuple[dict, np.ndarray]:
        """Features for every series at each origin index, forecasting h steps ahead.

        Returns (columns, level). Everything is read at or before the origin,
        except the calendar and the known-in-advance columns of the target period.
        """
        y = panel.values
        n_series = y.shape[0]
        rows_s = np.repeat(np.arange(n_series), len(origins))
        rows_o = np.tile(origins, n_series)
        cols: dict[str, np.ndarray] = {}
        lags = np.stack([_take(y, rows_s, rows_o - k) for k in range(self.n_lags)], axis=1)
        window = np.stack([_take(y, rows_s, rows_o - k) for k in range(self.level_window)], axis=1)
        with np.errstate(all="ignore"):
            level = np.nanmean(window, axis=1)
        level = np.where(np.isnan(level), np.nan, level + 1.0)
        for k in range(self.n_lags):
            cols[f"lag_{k + 1}"] = lags[:, k] / level
        with np.errstate(all="ignore"):
            cols["mean_4"] = np.nanmean(lags[:, :4], axis=1) / level
            cols["std_level"] = np.nanstd(window, axis=1) / level
            cols["zero_share"] = np.nanmean(window == 0, axis=1)
            cols["level_log"] = np.log1p(level)
        # the same phase in the latest season that ended by the origin (never after it,
        # also when the horizon is longer than a season, as with daily data)
        seasonal = rows_o + h - self.season * (1 + (h - 1) // self.season)
        cols["same_period_last_season"] = _take(y, rows_s, seasonal) / level
        with np.errstate(all="ignore"):
            cols["around_last_season"] = (
                np.nanmean(
                    np.stack(
                        [_take(y, rows_s, seasonal + d, until=rows_o) for d in (-1, 0, 1)], axis=1
                    ),
                    axis=1,
                )
                / level
            )
            cols["last_season_trend"] = (_take(y, rows_s, seasonal) + 1.0) / (
                _take(y, rows_s, rows_o - self.season) + 1.0
            )
        for c in self.future_cols:  # known in advance: its value in the target period
            x = panel.exog[c]
            cols[f"future_{c}"] = _take(x, rows_s, rows_o + h)
            if c not in self.categories_:
                cols[f"future_{c}_change"] = _take(x, rows_s, rows_o + h) - _take(x, rows_s, rows_o)
        for c in self.hist_cols:  # known once it happened: up to the origin only
            x = panel.exog[c]
            cols[f"hist_{c}"] = _take(x, rows_s, rows_o)
            if c not in self.categories_:
                with np.errstate(all="ignore"):
                    cols[f"hist_{c}_mean_4"] = np.nanmean(
                        np.stack([_take(x, rows_s, rows_o - k) for k in range(4)], axis=1), axis=1
                    )
        cols["horizon"] = np.full(len(rows_s), h, dtype=float)
        cols["age"] = (rows_o - np.argmax(~np.isnan(y), axis=1)[rows_s]).astype(float)
        target_dates = [self._date(panel, o + h) for o in origins]
        per_row = np.tile(np.arange(len(origins)), n_series)  # row -> its origin's position
        if self.calendar == "cn":
            cal = period_calendar_features(target_dates, FREQ_DAYS[self.freq])
            cal_index = {d: i for i, d in enumerate(cal["period_start"].to_list())}
            pos = np.array([cal_index[d] for d in target_dates])[per_row]
            for c in CAL_FEATURES:
                cols[c] = cal[c].to_numpy()[pos].astype(float)
        period_of_year = np.array(
            [
                d.isocalendar()[1] if self.freq == "W" else d.timetuple().tm_yday
                for d in target_dates
            ],
            dtype=float,
        )
        cols["period_of_year"] = period_of_year[per_row]
        cols["weekday"] = np.array([d.weekday() for d in target_dates], dtype=float)[per_row]
        for c in self.id_cols:
            codes = panel.keys[c].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
            cols[f"id_{c}"] = codes[rows_s].astype(float)
        return cols, level

    def _categorical_features(self, names: list[str]) -> list[str]:
        cats = {f"future_{c}" for c in self.categories_} | {f"hist_{c}" for c in self.categories_}
        return [n for n in names if n.startswith("id_") or n in cats]

    def _date(self, panel: Panel, index: int) -> date:
        return panel.dates[0] + timedelta(days=FREQ_DAYS[self.freq] * int(index))

    def _origins(self, n_series: int, n_periods: int, h: int) -> np.ndarray:
        """Training origins for horizon h: all of them, or every k-th back from the latest."""
        origins = np.arange(0, n_periods - h)
        budget = max(1, self.max_train_rows // (self.horizon * max(n_series, 1)))
        if len(origins) > budget:
            stride = int(np.ceil(len(origins) / budget))
            origins = origins[::-1][::stride][::-1]
        return origins

    def _training_rows(self, panel: Panel) -> tuple[dict, np.ndarray, np.ndarray]:
        parts, targets, levels = [], [], []
        n = panel.values.shape[1]
        for h in range(1, self.horizon + 1):
            origins = self._origins(panel.values.shape[0], n, h)
            cols, level = self._features(panel, origins, h)
            rows_s = np.repeat(np.arange(panel.values.shape[0]), len(origins))
            target = panel.values[rows_s, np.tile(origins, panel.values.shape[0]) + h]
            keep = ~np.isnan(target) & ~np.isnan(level)
            parts.append({k: v[keep].astype(np.float32) for k, v in cols.items()})
            targets.append(target[keep])
            levels.append(level[keep])
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return cols, np.concatenate(targets), np.concatenate(levels)

    def _train(self, panel: Panel) -> tuple[dict[float, lgb.Booster], list[str]]:
        cols, target, level = self._training_rows(panel)
        names = list(cols)
        matrix = np.column_stack([cols.pop(n) for n in names])
        # binned once, shared by every quantile's model
        data = lgb.Dataset(
            matrix,
            label=target / level,
            feature_name=names,
            categorical_feature=self._categorical_features(names),
            params={"verbose": -1, "max_bin": 255},
        ).construct()
        del matrix
        models = {}
        for q in self.quantiles:
            params = {**self.params, "objective": "quantile", "alpha": q}
            models[q] = lgb.train(params, data, num_boost_round=self.num_boost_round)
        return models, names

    def _predict_scaled(
        self, panel: Panel, models: dict[float, lgb.Booster], names: list[str], origin: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(series x horizon x quantile) predictions in level units, and the level per series."""
        out = np.zeros((panel.values.shape[0], self.horizon, len(self.quantiles)))
        level = None
        for h in range(1, self.horizon + 1):
            cols, level = self._features(panel, np.array([origin]), h)
            matrix = np.column_stack([cols[n] for n in names])
            for i, q in enumerate(self.quantiles):
                out[:, h - 1, i] = models[q].predict(matrix)
        return np.sort(out, axis=2), np.nan_to_num(level, nan=1.0)

    def _calibrate(self, panel: Panel) -> np.ndarray | None:
        """Split-conformal widening per horizon from a fit that stops `horizon` periods early."""
        n = panel.values.shape[1]
        cutoff = n - 1 - self.horizon
        if len(self.quantiles) < 2 or cutoff <= self.season:
            return None
        models, names = self._train(panel.until(cutoff))
        scaled, level = self._predict_scaled(panel, models, names, cutoff)
        actual = panel.values[:, cutoff + 1 : cutoff + 1 + self.horizon] / level[:, None]
        lo, hi = scaled[:, :, 0], scaled[:, :, -1]
        score = np.maximum(lo - actual, actual - hi)  # > 0 outside the band
        alpha = self.quantiles[0] + 1 - self.quantiles[-1]
        widen = np.zeros(self.horizon)
        for h in range(self.horizon):
            s = score[:, h][~np.isnan(score[:, h])]
            if len(s):
                level_q = min(1.0, np.ceil((len(s) + 1) * (1 - alpha)) / len(s))
                widen[h] = np.quantile(s, level_q)
        return widen

    # --- API ----------------------------------------------------------------------
    def fit(self, df: pl.DataFrame) -> LGBMForecaster:
        df, self.categories_ = encode_categories(df, self.exog_cols, {})
        panel = to_panel(
            df, self.id_cols, self.date_col, self.target_col, self.freq, self.exog_cols
        )
        self.models_, self.feature_names_ = self._train(panel)
        self.widen_ = self._calibrate(panel) if self.conformal else None
        self.panel_ = panel
        return self

    def predict(self, future: pl.DataFrame | None = None) -> pl.DataFrame:
        """Quantile forecasts for the `horizon` periods after the last observed one.

        `future` holds the id columns, the date column and every `future_cols`
        column for each series and horizon period.
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
                pl.lit(self._date(panel, origin + h)).alias(self.date_col),
                pl.lit(h).alias("horizon"),
            )
            for i, q in enumerate(self.quantiles):
                frame = frame.with_columns(pl.Series(quantile_name(q), preds[:, h - 1, i]))
            frames.append(frame)
        return pl.concat(frames).sort(*self.id_cols, self.date_col)

    def _with_future(self, panel: Panel, future: pl.DataFrame | None) -> Panel:
        """The panel with the known-in-advance columns filled in for the horizon."""
        if not self.future_cols:
            return panel
        if future is None:
            raise ValueError(
                f"the model uses known-in-advance columns {list(self.future_cols)}: pass their "
                f"values for the {self.horizon} periods after {panel.dates[-1]} (--future)"
            )
        missing = [c for c in (*self.id_cols, self.date_col, *self.future_cols) if c not in future]
        if missing:
            raise ValueError(f"the future table lacks columns {missing}")
        step = FREQ_DAYS[self.freq]
        n = panel.values.shape[1]
        future, _ = encode_categories(
            future.with_columns(pl.col(self.date_col).cast(pl.Date)),
            list(self.future_cols),
            self.categories_,
        )
        future = future.join(
            panel.keys.with_row_index("_series"), on=self.id_cols, how="inner"
        ).with_columns(
            ((pl.col(self.date_col) - pl.lit(panel.dates[0])).dt.total_days() // step).alias("_t")
        )
        future = future.filter((pl.col("_t") >= n) & (pl.col("_t") < n + self.horizon))
        exog = dict(panel.exog)
        for c in self.future_cols:
            x = np.concatenate([panel.exog[c], np.full((len(panel.keys), self.horizon), np.nan)], 1)
            x[future["_series"].to_numpy(), future["_t"].to_numpy()] = future[c].to_numpy()
            exog[c] = x
        return Panel(panel.keys, panel.dates, panel.values, exog)

    def cross_validation(
        self, df: pl.DataFrame, n_windows: int = 1, step: int | None = None
    ) -> pl.DataFrame:
        """Rolling-origin backtest: refit at each cutoff and forecast the next `horizon` periods.

        Returns the id columns, date, cutoff, horizon, actual (`y`), the model's
        quantiles and the baselines (seasonal naive, moving average, simple
        exponential smoothing), plus `mase_scale` (the series' in-sample
        seasonal-naive MAE) for MASE.
        """
        step = step or self.horizon
        encoded, _ = encode_categories(df, self.exog_cols, {})
        panel = to_panel(
            encoded, self.id_cols, self.date_col, self.target_col, self.freq, self.exog_cols
        )
        n = panel.values.shape[1]
        out = []
        for w in range(n_windows):
            cutoff = n - 1 - self.horizon - (n_windows - 1 - w) * step
            if cutoff < self.season:
                raise ValueError(
                    f"not enough history for window {w}: need more than "
                    f"{self.season + self.horizon} periods, have {n}"
                )
            cutoff_date = self._date(panel, cutoff)
            train = df.filter(pl.col(self.date_col).cast(pl.Date) <= cutoff_date)
            model = dataclasses.replace(self).fit(train)  # same settings, unfitted
            future = (
                df.filter(pl.col(self.date_col).cast(pl.Date) > cutoff_date).select(
                    *self.id_cols, self.date_col, *self.future_cols
                )
                if self.future_cols
                else None
            )
            fc = model.predict(future)
            truth = panel.values[:, cutoff + 1 : cutoff + 1 + self.horizon]
            hist = panel.values[:, : cutoff + 1]
            base = baselines(hist, self.horizon, self.season)
            with warnings.catch_warnings():  # a series younger than a season has no scale
                warnings.simplefilter("ignore", RuntimeWarning)
                scale = np.nanmean(np.abs(hist[:, self.season :] - hist[:, : -self.season]), axis=1)
            long = []
            for h in range(self.horizon):
                long.append(
                    panel.keys.with_columns(
                        pl.lit(self._date(panel, cutoff + 1 + h)).alias(self.date_col),
                        pl.lit(cutoff_date).alias("cutoff"),
                        pl.lit(h + 1).alias("horizon"),
                        pl.Series("y", truth[:, h]),
                        *[pl.Series(name, b[:, h]) for name, b in base.items()],
                        pl.Series("mase_scale", scale),
                    )
                )
            merged = pl.concat(long).join(
                fc.drop("horizon"),
                on=[*self.id_cols, self.date_col],
                how="left",
            )
            out.append(merged)
        # a series born after a cutoff has neither history nor a forecast at it: cold start
        return pl.concat(out).filter(
            pl.col("y").is_not_null() & pl.col("y").is_not_nan() & pl.col("p50").is_not_null()
        )


BASELINES = ("seasonal_naive", "moving_average", "exp_smoothing")


def baselines(hist: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Seasonal naive (same period one season back), the mean of the last 4 periods, and
    simple exponential smoothing with each series' smoothing weight fitted in-sample."""
    n = hist.shape[1]
    # target n + h, same phase in the last complete season
    idx = np.array([n + h - season * (1 + h // season) for h in range(horizon)])
    seasonal = np.nan_to_num(hist[:, idx], nan=0.0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # series not yet born
        ma = np.nan_to_num(np.nanmean(hist[:, -4:], axis=1), nan=0.0)
    ses = exponential_smoothing(hist)
    return {
        "seasonal_naive": seasonal,
        "moving_average": np.repeat(ma[:, None], horizon, 1),
        "exp_smoothing": np.repeat(ses[:, None], horizon, 1),
    }


def exponential_smoothing(
    hist: np.ndarray, alphas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
) -> np.ndarray:
    """Simple exponential smoothing level per series; alpha minimises one-step squared error."""
    y = np.nan_to_num(hist, nan=0.0)
    start = np.argmax(~np.isnan(hist), axis=1)
    best_err = np.full(y.shape[0], np.inf)
    best_level = np.zeros(y.shape[0])
    for a in alphas:
        level = y[np.arange(y.shape[0]), start].copy()
        err = np.zeros(y.shape[0])
        for t in range(y.shape[1]):
            live = t > start
            err += np.where(live, (y[:, t] - level) ** 2, 0.0)
            level = np.where(live, a * y[:, t] + (1 - a) * level, level)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_level = np.where(better, level, best_level)
    return best_level


def quantile_name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _take(
    y: np.ndarray, rows: np.ndarray, cols: np.ndarray, until: np.ndarray | None = None
) -> np.ndarray:
    """y[rows, cols] with NaN where cols falls outside the matrix (or after `until`)."""
    ok = (cols >= 0) & (cols < y.shape[1])
    if until is not None:
        ok &= cols <= until
    out = np.full(len(rows), np.nan)
    out[ok] = y[rows[ok], cols[ok]]
    return out
