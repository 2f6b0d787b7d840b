"""One item, one code: case activation, which unit code a consumer scans, diversion and fakes.

Every case a DC ships is activated to its distributor with a contiguous range
of unit serials. Units leave each distributor first-in first-out, so the code
on a scanned unit is the next one in its distributor's stream. Diverting
distributors order extra cases (activated to them, outside their stores'
stream) whose units turn up in another province's stores; forged codes were
never issued (their check value fails); cloned codes are real codes copied
onto fakes and scanned far from where they were sold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bclake.core.codes import code_body, make_codes
from bclake.simulator.world import World

BIG = np.int64(10**10)


@dataclass
class CodeLedger:
    """Activated cases so far and each distributor x SKU's FIFO position."""

    n_dist: int
    n_sku: int
    case_pack: np.ndarray
    next_serial: np.ndarray = field(init=False)
    sold_pos: np.ndarray = field(init=False)
    units_activated: np.ndarray = field(init=False)
    cases: list[pl.DataFrame] = field(default_factory=list)
    side: list[pl.DataFrame] = field(default_factory=list)  # extra cases not yet exported
    _index: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.next_serial = np.ones(self.n_sku, dtype=np.int64)
        self.sold_pos = np.zeros((self.n_dist, self.n_sku), dtype=np.int64)
        self.units_activated = np.zeros((self.n_dist, self.n_sku), dtype=np.int64)

    def activate(self, day: int, d: np.ndarray, k: np.ndarray, units: np.ndarray) -> pl.DataFrame:
        """Activate whole cases shipped to distributors; returns the new case rows."""
        n_cases = units // self.case_pack[k]
        keep = n_cases > 0
        d, k, n_cases = d[keep], k[keep], n_cases[keep]
        rep_d, rep_k = np.repeat(d, n_cases), np.repeat(k, n_cases)
        pack = self.case_pack[rep_k]
        # serials run on per SKU; stream positions per distributor x SKU, in shipment order
        first = _grouped_offsets(rep_k, pack, self.next_serial)
        key = rep_d.astype(np.int64) * self.n_sku + rep_k
        start_pos = _grouped_offsets(key, pack, self.units_activated.reshape(-1))
        frame = pl.DataFrame(
            {
                "d": rep_d.astype(np.int32),
                "k": rep_k.astype(np.int32),
                "day": np.int32(day),
                "first_serial": first,
                "units": pack.astype(np.int64),
                "stream_pos": start_pos,
            }
        )
        self.cases.append(frame)
        self._index = None
        return frame

    def prune(self) -> None:
        """Forget cases whose units were all sold: FIFO lookups only go forward.

        Each stream's sold position only grows, so older, fully consumed cases
        are dead weight (memory stays bounded).
        """
        if not self.cases:
            return
        allc = pl.concat(self.cases)
        d, k = allc["d"].to_numpy(), allc["k"].to_numpy()
        end = allc["stream_pos"].to_numpy() + allc["units"].to_numpy()
        self.cases = [allc.filter(pl.Series(end > self.sold_pos[d, k]))]
        self._index = None

    def _lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._index is None:
            allc = pl.concat(self.cases)
            key = allc["d"].to_numpy().astype(np.int64) * self.n_sku + allc["k"].to_numpy()
            end = allc["stream_pos"].to_numpy() + allc["units"].to_numpy()
            order = np.lexsort((end, key))
            self._index = (
                key[order] * BIG + end[order],
                allc["first_serial"].to_numpy()[order],
                allc["stream_pos"].to_numpy()[order],
                allc["day"].to_numpy()[order],
            )
        return self._index

    def fifo_codes(self, d: np.ndarray, k: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Code bodies of the units at stream positions `pos` of distributors `d`, SKUs `k`."""
        combined, first, start, _ = self._lookup()
        key = d.astype(np.int64) * self.n_sku + k
        i = np.searchsorted(combined, key * BIG + pos, side="right")
        i = np.clip(i, 0, len(combined) - 1)
        # a position past the last activated unit reuses the last case's units (rare)
        same = combined[i] // BIG == key
        offset = np.where(same, pos - start[i], 0)
        offset = np.clip(offset, 0, None)
        return code_body(k, first[i] + offset % np.maximum(1, self._units_of(i)))

    def extra_codes(
        self,
        d: np.ndarray,
        k: np.ndarray,
        day: np.ndarray,
        scan_share: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Code bodies for units a distributor ordered beyond its territory's needs.

        A diverter orders extra stock from the brand and sells it elsewhere, so
        diverted units are not in its stores' FIFO stream: each distributor x SKU
        group of scans (`d`, `k`, `day`) gets fresh whole cases activated to it a
        week before its first scan, enough for the scanned units at `scan_share`
        of units scanned, and every scan a distinct unit of them. The new cases
        wait in `side` (with `seconds`) until the caller exports them.
        """
        out = np.zeros(len(d), dtype=np.int64)
        if len(d) == 0:
            return out
        key = d.astype(np.int64) * self.n_sku + k
        order = np.argsort(key, kind="stable")
        groups, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
        rows = []
        for g, first, n in zip(groups, starts, counts, strict=True):
            idx = order[first : first + n]
            dist, sku = int(g // self.n_sku), int(g % self.n_sku)
            pack = int(self.case_pack[sku])
            n_cases = max(1, -(-int(np.ceil(n / scan_share)) // pack))
            first_serial = self.next_serial[sku]
            self.next_serial[sku] += n_cases * pack
            units = n_cases * pack
            per = units / n
            rank = np.arange(n)
            lo, hi = (
                np.floor(rank * per).astype(np.int64),
                np.floor((rank + 1) * per).astype(np.int64),
            )
            unit = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
            out[idx] = code_body(np.full(n, sku), first_serial + rng.permutation(unit))
            rows.append(
                pl.DataFrame(
                    {
                        "d": np.full(n_cases, dist, dtype=np.int32),
                        "k": np.full(n_cases, sku, dtype=np.int32),
                        "day": np.full(n_cases, int(day[idx].min()) - 7, dtype=np.int32),
                        "first_serial": first_serial + pack * np.arange(n_cases, dtype=np.int64),
                        "units": np.full(n_cases, pack, dtype=np.int64),
                        "stream_pos": np.full(n_cases, -1, dtype=np.int64),
                        "seconds": rng.integers(6 * 3600, 20 * 3600, n_cases).astype(np.int64),
                    }
                )
            )
        self.side.extend(rows)
        return out

    def take_side_cases(self) -> pl.DataFrame | None:
        """The extra cases activated since the last call (None when there are none)."""
        if not self.side:
            return None
        frame, self.side = pl.concat(self.side), []
        return frame

    def _units_of(self, i: np.ndarray) -> np.ndarray:
        combined, _, start, _ = self._lookup()
        return combined[i] % BIG - start[i]


def _grouped_offsets(group: np.ndarray, size: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Hand out consecutive ranges of `size` per group, continuing each group's `counter`.

    Returns each row's range start and advances `counter` in place (a vectorised
    grouped exclusive cumulative sum, in the rows' original order within a group).
    """
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    g, sz = group[order], size[order]
    before = np.cumsum(sz) - sz
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(g)])
    within = before - np.repeat(before[starts], lengths)
    out = np.empty(len(group), dtype=np.int64)
    out[order] = counter[g] + within
    counter[g[starts]] += np.add.reduceat(sz, starts)
    return out


def case_codes(frame: pl.DataFrame) -> pl.Series:
    """Printed case code: 'X' + SKU index + first unit serial (the range start)."""
    return (
        "X"
        + frame["k"].cast(pl.String).str.zfill(3)
        + frame["first_serial"].cast(pl.String).str.zfill(10)
    )


def forged_bodies(k: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Printed codes a counterfeiter invents: plausible bodies, check values that do not match."""
    bodies = code_body(k, rng.integers(10**9, 9 * 10**9, size=len(k)))
    printed = make_codes(bodies)
    fake_check = pl.Series(rng.integers(0, 10**5, size=len(k))).cast(pl.String).str.zfill(5)
    return printed.str.slice(0, 13) + fake_check


EPISODE_DAYS = (42, 140)  # a diversion episode lasts six to twenty weeks
SECOND_EPISODE_P = 0.5  # chance a diverter tries again, into another province
RAMP_DAYS = 21  # an episode reaches its full volume after three weeks
INTENSITY = (0.2, 1.4)  # an episode moves this multiple of the configured diversion share


@dataclass
class Diversion:
    """Where and when diverters' goods turn up: per store, the chance a scanned unit is diverted.

    Diversion comes in episodes: a diverter pushes stock into one province of
    another region from `start` to `end` (day indices, end exclusive), then
    stops; some try again later elsewhere.
    """

    prob: np.ndarray  # stores: share of scans there that are of a diverter's units
    source: np.ndarray  # stores: index of the distributor diverting into it (-1: none)
    start: np.ndarray  # stores: first day of the episode that reaches the store
    end: np.ndarray  # stores: day after its last day
    plan: pl.DataFrame  # distributor_code, home_province, target_province, scan_share, days

    def share(self, s: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Share of the scans at stores `s` on days `day` that are of diverted units.

        Zero outside an episode; an episode ramps up over its first `RAMP_DAYS`
        (a diverter tests the market before it ships in volume).
        """
        ramp = np.clip((day - self.start[s] + 1) / RAMP_DAYS, 0.0, 1.0)
        return np.where((day >= self.start[s]) & (day < self.end[s]), self.prob[s] * ramp, 0.0)


def diversion_plan(
    world: World,
    dist_of_store: np.ndarray,
    diversion_share: float,
    n_days: int,
    rng: np.random.Generator,
) -> Diversion:
    """Each diverting distributor pushes stock into a province of another region, in episodes.

    An episode moves `INTENSITY` times `diversion_share` of the diverter's volume
    out of its territory (some diverters are cautious, some blatant); a target
    store's scan share is capped at 0.5.
    Episodes start within the `n_days` window (at least four weeks in) and
    last `EPISODE_DAYS`; a province is the target of one episode at most.
    """
    dists = world.distributors.with_row_index("d")
    diverters = dists.filter(pl.col("diverts"))
    n_s = len(world.stores)
    provinces = world.stores.select("province", "region").unique().sort("province")
    vol = world.stores.group_by("province").agg(pl.sum("base_rate"))
    vol_of = dict(zip(vol["province"], vol["base_rate"], strict=True))
    dist_vol = np.zeros(len(dists))
    np.add.at(dist_vol, dist_of_store, world.stores["base_rate"].to_numpy())
    plan, prob = [], np.zeros(n_s)
    source = np.full(n_s, -1)
    start, end = np.zeros(n_s, dtype=np.int64), np.zeros(n_s, dtype=np.int64)
    store_prov = world.stores["province"].to_numpy()
    taken: set[str] = set()
    for row in diverters.iter_rows(named=True):
        first = int(rng.integers(28, max(29, n_days - EPISODE_DAYS[0])))
        episodes = [first]
        if rng.random() < SECOND_EPISODE_P:
            episodes.append(first + EPISODE_DAYS[1] + int(rng.integers(28, 120)))
        for begin in episodes:
            if begin >= n_days - 14:
                continue
            options = provinces.filter(
                pl.col("region") != row["region"], ~pl.col("province").is_in(list(taken))
            )
            if options.is_empty():
                options = provinces.filter(
                    pl.col("province") != row["province"], ~pl.col("province").is_in(list(taken))
                )
            if options.is_empty():
                continue
            target = options["province"][int(rng.integers(options.height))]
            taken.add(target)
            stop = min(n_days, begin + int(rng.integers(*EPISODE_DAYS)))
            intensity = float(rng.uniform(*INTENSITY))
            share = min(0.5, intensity * diversion_share * dist_vol[row["d"]] / vol_of[target])
            in_target = store_prov == target
            prob[in_target], source[in_target] = share, row["d"]
            start[in_target], end[in_target] = begin, stop
            plan.append(
                {
                    "distributor_code": row["distributor_code"],
                    "home_province": row["province"],
                    "target_province": target,
                    "scan_share": share,
                    "start_day": begin,
                    "end_day": stop,
                }
            )
    schema = {
        "distributor_code": pl.String,
        "home_province": pl.String,
        "target_province": pl.String,
        "scan_share": pl.Float64,
        "start_day": pl.Int64,
        "end_day": pl.Int64,
    }
    return Diversion(prob, source, start, end, pl.DataFrame(plan, schema=schema))
