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
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import polars as pl

from bclake.calendar import period_calendar_features

FREQ_DAYS = {"D": 1, "W": 7}
SEASON = {"D": 7, "W": 52}
CAL_FEATURES = ["holiday_days", "makeup_workdays", "festival_days", "days_to_spring_festival"]


@dataclass
class Panel:
    """A long table laid out as a dense series x period matrix (NaN before a series starts)."""

    keys: pl.DataFrame  # one row per series, the id columns
    dates: list[date]  # period starts, evenly spaced
    values: np.ndarray  # series x periods


def to_panel(
    df: pl.DataFrame, id_cols: list[str], date_col: str, target_col: str, freq: str
) -> Panel:
    step = FREQ_DAYS[freq]
    df = df.select(*id_cols, pl.col(date_col).cast(pl.Date), pl.col(target_col).cast(pl.Float64))
    df = df.group_by(*id_cols, date_col).agg(pl.col(target_col).sum())
    first, last = df[date_col].min(), df[date_col].max()
    n = (last - first).days // step + 1
    dates = [first + timedelta(days=step * i) for i in range(n)]
    keys = df.select(id_cols).unique().sort(id_cols).with_row_index("_series")
    df = df.join(keys, on=id_cols).with_columns(
        ((pl.col(date_col) - pl.lit(first)).dt.total_days() // step).alias("_t")
    )
    values = np.full((keys.height, n), np.nan)
    values[df["_series"].to_numpy(), df["_t"].to_numpy()] = df[target_col].to_numpy()
    # inside a series' life a missing period means nothing sold
    started = np.maximum.accumulate(~np.isnan(values), axis=1)
    values = np.where(started & np.isnan(values), 0.0, values)
    return Panel(keys.drop("_series"), dates, values)


@dataclass
class LGBMForecaster:
    """Global quantile LightGBM forecaster (direct, pooled horizons)."""

    id_cols: list[str]
    date_col: str
    target_col: str
    horizon: int = 13
    freq: str = "W"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    n_lags: int = 8
    level_window: int = 13
    num_boost_round: int = 300
    params: dict = field(
        default_factory=lambda: {
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
        }
    )
    models_: dict[float, lgb.Booster] = field(default_factory=dict, repr=False)
    panel_: Panel | None = field(default=None, repr=False)

    # --- features -----------------------------------------------------------------
    @property
    def season(self) -> int:
        return SEASON[self.freq]

    def _features(self, panel: Panel, origins: np.ndarray, h: int) -> tuple[dict, np.ndarray]:
        with warnings.catch_warnings():  # all-NaN windows before a series starts are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._features_unchecked(panel, origins, h)

    def _features_unchecked(
        self, panel: Panel, origins: np.ndarray, h: int
    ) -> tuple[dict, np.ndarray]:
        """Features for every series at each origin index, forecasting h steps ahead.

        Returns (columns, level). Everything is read at or before the origin,
        except the calendar of the target period (known in advance).
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
            cols["level_log"] = np.log1p(level)
        seasonal = rows_o + h - self.season
        cols["same_period_last_season"] = _take(y, rows_s, seasonal) / level
        with np.errstate(all="ignore"):
            cols["around_last_season"] = (
                np.nanmean(
                    np.stack([_take(y, rows_s, seasonal + d) for d in (-1, 0, 1)], axis=1), axis=1
                )
                / level
            )
            cols["last_season_trend"] = (_take(y, rows_s, seasonal) + 1.0) / (
                _take(y, rows_s, rows_o - self.season) + 1.0
            )
        cols["horizon"] = np.full(len(rows_s), h, dtype=float)
        cols["age"] = (rows_o - np.argmax(~np.isnan(y), axis=1)[rows_s]).astype(float)
        target_dates = [self._date(panel, o + h) for o in origins]
        cal = period_calendar_features(target_dates, FREQ_DAYS[self.freq])
        cal_index = {d: i for i, d in enumerate(cal["period_start"].to_list())}
        pos = np.array([cal_index[d] for d in target_dates])[
            np.tile(np.arange(len(origins)), n_series)
        ]
        for c in CAL_FEATURES:
            cols[c] = cal[c].to_numpy()[pos].astype(float)
        td = np.array(target_dates)[np.tile(np.arange(len(origins)), n_series)]
        cols["period_of_year"] = np.array(
            [d.isocalendar()[1] if self.freq == "W" else d.timetuple().tm_yday for d in td],
            dtype=float,
        )
        cols["weekday"] = np.array([d.weekday() for d in td], dtype=float)
        for c in self.id_cols:
            codes = panel.keys[c].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
            cols[f"id_{c}"] = codes[rows_s].astype(float)
        return cols, level

    def _date(self, panel: Panel, index: int) -> date:
        return panel.dates[0] + timedelta(days=FREQ_DAYS[self.freq] * int(index))

    def _training_rows(self, panel: Panel) -> tuple[dict, np.ndarray, np.ndarray]:
        parts, targets, levels = [], [], []
        n = panel.values.shape[1]
        for h in range(1, self.horizon + 1):
            origins = np.arange(0, n - h)
            cols, level = self._features(panel, origins, h)
            rows_s = np.repeat(np.arange(panel.values.shape[0]), len(origins))
            target = panel.values[rows_s, np.tile(origins, panel.values.shape[0]) + h]
            keep = ~np.isnan(target) & ~np.isnan(level)
            parts.append({k: v[keep] for k, v in cols.items()})
            targets.append(target[keep])
            levels.append(level[keep])
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return cols, np.concatenate(targets), np.concatenate(levels)

    # --- API ----------------------------------------------------------------------
    def fit(self, df: pl.DataFrame) -> LGBMForecaster:
        panel = to_panel(df, self.id_cols, self.date_col, self.target_col, self.freq)
        cols, target, level = self._training_rows(panel)
        names = list(cols)
        matrix = np.column_stack([cols[n] for n in names])
        cats = [n for n in names if n.startswith("id_")]
        self.models_ = {}
        for q in self.quantiles:
            data = lgb.Dataset(
                matrix,
                label=target / level,
                feature_name=names,
                categorical_feature=cats,
                free_raw_data=False,
            )
            params = {**self.params, "objective": "quantile", "alpha": q}
            self.models_[q] = lgb.train(params, data, num_boost_round=self.num_boost_round)
        self.panel_ = panel
        self.feature_names_ = names
        return self

    def predict(self) -> pl.DataFrame:
        """Quantile forecasts for the `horizon` periods after the last observed one."""
        if self.panel_ is None:
            raise RuntimeError("call fit() before predict()")
        panel = self.panel_
        origin = np.array([panel.values.shape[1] - 1])
        frames = []
        for h in range(1, self.horizon + 1):
            cols, level = self._features(panel, origin, h)
            matrix = np.column_stack([cols[n] for n in self.feature_names_])
            preds = {}
            for q, model in self.models_.items():
                preds[q] = np.maximum(0.0, model.predict(matrix) * np.nan_to_num(level, nan=1.0))
            stacked = np.sort(np.column_stack([preds[q] for q in self.quantiles]), axis=1)
            frame = panel.keys.with_columns(
                pl.lit(self._date(panel, origin[0] + h)).alias(self.date_col),
                pl.lit(h).alias("horizon"),
            )
            for i, q in enumerate(self.quantiles):
                frame = frame.with_columns(pl.Series(quantile_name(q), stacked[:, i]))
            frames.append(frame)
        return pl.concat(frames).sort(*self.id_cols, self.date_col)

    def cross_validation(
        self, df: pl.DataFrame, n_windows: int = 1, step: int | None = None
    ) -> pl.DataFrame:
        """Rolling-origin backtest: refit at each cutoff and forecast the next `horizon` periods.

        Returns the id columns, date, cutoff, actual (`y`), the model's
        quantiles and the seasonal-naive and moving-average baselines, plus
        `mase_scale` (the series' in-sample seasonal-naive MAE) for MASE.
        """
        step = step or self.horizon
        panel = to_panel(df, self.id_cols, self.date_col, self.target_col, self.freq)
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
            model = LGBMForecaster(**{**self._config(), "horizon": self.horizon}).fit(train)
            fc = model.predict()
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
                        pl.Series("seasonal_naive", base["seasonal_naive"][:, h]),
                        pl.Series("moving_average", base["moving_average"][:, h]),
                        pl.Series("mase_scale", scale),
                    )
                )
            merged = pl.concat(long).join(
                fc.drop("horizon"), on=[*self.id_cols, self.date_col], how="left"
            )
            out.append(merged)
        return pl.concat(out).filter(pl.col("y").is_not_null())

    def _config(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "id_cols",
                "date_col",
                "target_col",
                "freq",
                "quantiles",
                "n_lags",
                "level_window",
                "num_boost_round",
                "params",
            )
        }


def baselines(hist: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Seasonal naive (same period one season back) and the mean of the last 4 periods."""
    n = hist.shape[1]
    idx = np.array([n - season + h if n - season + h < n else n - 1 for h in range(horizon)])
    seasonal = np.nan_to_num(hist[:, idx], nan=0.0)
    with np.errstate(all="ignore"):
        ma = np.nan_to_num(np.nanmean(hist[:, -4:], axis=1), nan=0.0)
    return {"seasonal_naive": seasonal, "moving_average": np.repeat(ma[:, None], horizon, 1)}


def quantile_name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _take(y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """y[rows, cols] with NaN where cols falls outside the matrix."""
    ok = (cols >= 0) & (cols < y.shape[1])
    out = np.full(len(rows), np.nan)
    out[ok] = y[rows[ok], cols[ok]]
    return out
