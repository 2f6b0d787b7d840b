"""Everything a simulation carries from one day to the next, in one saved object.

`SimState` is exactly what `truth/_state.pkl` holds and `simulate --continue`
reloads: the world and its plans, the channel's stock, the code ledger, the
consumers' progress, queues of documents not yet due, id counters and the
random streams. Lookups derived from the world are rebuilt instead of saved.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import polars as pl

from bclake.simulator.codes import CodeLedger, Diversion
from bclake.simulator.config import ScaleConfig
from bclake.simulator.consumers import no_visits
from bclake.simulator.dynamics import Channel
from bclake.simulator.economics import ChannelBook, CostModel
from bclake.simulator.export import LateRows
from bclake.simulator.geography import Geography
from bclake.simulator.incentives import EvidenceBook
from bclake.simulator.market import Market
from bclake.simulator.scenarios import Scenario
from bclake.simulator.world import World

# version of the saved state's layout: 2 added the geography, the cost to serve and three
# streams, 3 the stream of store orders' sources; an older state cannot be continued
STATE_VERSION = 3


class StaleStateError(ValueError):
    """A saved state from an older simulator: the world has to be simulated afresh."""


@dataclass
class Streams:
    """One random generator per concern, spawned from the run's seed.

    Children of one `SeedSequence` are independent, so more or fewer draws for
    one concern leave every other concern's draws unchanged. The field order
    fixes which child each concern gets: add new concerns at the end.
    """

    world: np.random.Generator  # entities and latent traits
    promotions: np.random.Generator  # promotion calendar and store sign-ups
    display: np.random.Generator  # display compliance, rep visits, check scores
    market: np.random.Generator  # competitor prices, promotions, share noise
    channel: np.random.Generator  # demand and the stores' and distributors' policies
    diversion: np.random.Generator  # diverters' target provinces and diverted units
    activation: np.random.Generator  # time of day cases are activated
    payment: np.random.Generator  # distributors' payment delays
    scans: np.random.Generator  # product scans: who, where, when, which unit, reward
    fakes: np.random.Generator  # forged and cloned codes
    store_scans: np.random.Generator  # store-code scans and ratings
    campaigns: np.random.Generator  # campaign draws, hold-outs and outcomes
    groups: np.random.Generator  # community group membership and interactions
    referrals: np.random.Generator  # who refers a new consumer, and when
    registration: np.random.Generator  # mini-program sign-ups, per-consumer profile salt
    late: np.random.Generator  # rows that arrive a run late
    dirt: np.random.Generator  # faults injected into the exports
    travel: np.random.Generator  # where genuine units are scanned away from their store
    photos: np.random.Generator  # display photo hashes and photo-reuse fraud
    farming: np.random.Generator  # stores farming the consumer-scan reward: who, when, what
    bulk: np.random.Generator  # consumers scanning every unit of a multi-unit purchase
    rebates: np.random.Generator  # the DMS's clerical errors in paying the programmes
    geography: np.random.Generator  # city potential, planted white space, homes, latent costs
    visitors: np.random.Generator  # extra demand of stores near untapped cities
    home_scans: np.random.Generator  # which of the residents' product scans are made at home
    ordering: np.random.Generator  # whether a store order was placed from the DMS's suggestion

    @classmethod
    def from_seed(cls, seed: int) -> Streams:
        children = np.random.SeedSequence(seed).spawn(len(fields(cls)))
        return cls(*(np.random.default_rng(child) for child in children))


@dataclass
class Serials:
    """The last number handed out per document kind; ids run on across continued runs."""

    scan: int = 0
    store_scan: int = 0
    shipment: int = 0
    coupon: int = 0
    interaction: int = 0
    payment: int = 0
    rebate: int = 0

    def take(self, kind: str, n: int) -> np.ndarray:
        """The next `n` numbers of `kind` (int64, consecutive from the last one + 1)."""
        first = getattr(self, kind) + 1
        setattr(self, kind, first + n - 1)
        return np.arange(first, first + n, dtype=np.int64)


@dataclass
class SimState:
    """The whole mutable state of a simulated world (day indices count from `cfg.start`)."""

    # the world and what was planned for it up front
    cfg: ScaleConfig
    seed: int
    streams: Streams
    world: World
    calendar: pl.DataFrame  # one row per planned day (`cfg.horizon_days`)
    promos: pl.DataFrame  # region x SKU promotion windows
    signups: pl.DataFrame  # promo_no, s: stores signed up to each promotion
    display: np.ndarray  # months x stores: display met the standard
    check_day: np.ndarray  # months x stores: day index of the rep's display check
    check_done: np.ndarray  # months x stores: whether the rep came that month
    market: Market
    share_noise: np.ndarray  # months * provinces * categories: market-share survey noise
    diversion: Diversion
    group_members: pl.DataFrame  # g, c, join_day
    mini_program_day: np.ndarray  # consumers: day of a mini-program sign-up (int32 max: never)
    salt: int  # seeds the stateless per-consumer draws of `consumers.unit_draw`
    # what moves day by day
    channel: Channel  # stock and orders of stores, distributors, DCs and plants
    ledger: CodeLedger  # activated cases and each distributor x SKU's FIFO position
    first_scan: np.ndarray  # consumers: day of the first genuine product scan
    serials: Serials = field(default_factory=Serials)
    stockouts: list[int] = field(default_factory=list)  # per simulated day: censored cells
    next_day: int = 0  # first day not simulated yet
    # documents and events not yet due
    unpaid: list[pl.DataFrame] = field(default_factory=list)  # invoices with their pay_date
    campaigns: list[dict[str, object]] = field(default_factory=list)  # one row per campaign
    campaigns_written: int = 0  # campaigns already in a `cdp.campaigns` export
    pending_coupons: list[pl.DataFrame] = field(default_factory=list)  # exported on expiry
    scheduled: pl.DataFrame = field(default_factory=no_visits)  # store visits due later
    referrals: list[pl.DataFrame] = field(default_factory=list)  # referrer, day
    late: LateRows = field(default_factory=LateRows)  # export rows held back a run
    written_until: int = -1  # last day whose snapshots (payments, market, ...) are out
    # incentive programmes: planted reward fraud and the evidence the programmes pay for
    photo_reuse: pl.DataFrame | None = None  # m, s, src_m, src_s, score: reused photos
    farming: pl.DataFrame | None = None  # s, c, day, seconds, n, minutes: farming bursts
    book: EvidenceBook | None = None  # evidence per payee and day, DMS view and truth
    photo_salt: int = 0  # seeds the genuine checks' photo hashes
    # named supply shocks (`simulate --scenario`); None: the world as it is
    scenario: Scenario | None = None
    # channel optimisation: the latent market, the cost to serve and what it was spent on
    geography: Geography | None = None
    costs: CostModel | None = None
    channel_book: ChannelBook | None = None
    # layout of the saved state; a state saved by an older simulator lacks it (see `load`)
    version: int = STATE_VERSION

    def save(self, path: Path) -> None:
        """Pickle atomically to `path`, streamed (never the whole pickle in memory)."""
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> SimState:
        """Read a state saved by `save`.

        Raises TypeError when the file holds something else and StaleStateError (a
        ValueError, which the CLI prints) when it was saved in an older layout.
        """
        with path.open("rb") as fh:
            state = pickle.load(fh)
        if not isinstance(state, SimState):
            raise TypeError(f"{path} holds no simulation state: simulate the world again")
        # instance attributes only: an old pickle would fall back to the class default
        saved = state.__dict__.get("version", 1)
        if saved != STATE_VERSION:
            raise StaleStateError(
                f"{path} was saved by an older simulator (state layout {saved}, this one "
                f"reads {STATE_VERSION}: it lacks the streams and entities added since), "
                "so it cannot be continued: run `bclake simulate` afresh"
            )
        return state
