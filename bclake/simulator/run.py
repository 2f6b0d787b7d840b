"""Simulate a whole world and write its exports to `landing/` and its truth to `truth/`.

Days are simulated in order and flushed one calendar month at a time, so
memory stays bounded by a month of activity whatever the scale. Each flush
runs the B side (`trade`), the consumers (`scans`, `consumers`) and hands the
records to one emitter per source system (`emitters.erp`, `.dms`, `.code`,
`.cdp`, `.market`). Masters and snapshots (products, stores, consumers, ...)
are written when their content is known; dirt is injected last and listed in
`truth/fault_manifest.parquet`. Each flush also records the evidence of the
incentive programmes (`incentives.EvidenceBook`); each snapshot has the DMS pay
the programme periods that fell due and writes what they truly earned.

All mutable state lives in one `state.SimState`, saved as `truth/_state.pkl`,
so `continue_simulation` can append the next days as daily export files,
holding back a share of rows that arrive one run later as `_late` files.

The manifest `landing/_simulation.json` lists every landing file the simulator wrote
with its size and is signed with the data root's simulator key
(`Settings.sign_simulation`): that is what makes a landing simulated, and what lets
`simulate` start afresh. It deletes a landing only when it holds nothing else
(`Settings.foreign_landing_files`); a landing with anything the simulator did not write,
real exports perhaps, raises `ForeignLandingError` and nothing is touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bclake.core.calendar import build_calendar
from bclake.core.incentives import Programmes, load_programmes
from bclake.core.progress import track
from bclake.core.settings import SIMULATION_MANIFEST, Settings
from bclake.simulator import consumers, economics, geography, incentives, scans, trade, truth
from bclake.simulator.codes import CodeLedger, diversion_plan
from bclake.simulator.config import ScaleConfig, get_scale
from bclake.simulator.dirt import inject_dirt
from bclake.simulator.dynamics import (
    Channel,
    DayRecord,
    display_compliance,
    month_number,
    promotion_signups,
    promotions,
    stack_days,
)
from bclake.simulator.emitters import cdp, code, dms, erp
from bclake.simulator.emitters import market as market_exports
from bclake.simulator.emitters.out import Out
from bclake.simulator.export import LATE_SHARE, Landing
from bclake.simulator.lookup import Lookup
from bclake.simulator.market import brand_share, build_market
from bclake.simulator.scenarios import check_scenario, plan_scenario
from bclake.simulator.state import SimState, Streams
from bclake.simulator.world import build_world

STATE = "_state.pkl"
SCAN_PART_SALES_ROWS = 2_000_000  # sales rows per part of the product-scan log
OPENING_DAY = -10  # day index the stock already in the channel was activated on


class ForeignLandingError(RuntimeError):
    """landing/ holds files the simulator did not write; nothing was deleted."""


def _own_landing(settings: Settings) -> None:
    """Raise ForeignLandingError unless landing/ holds only the simulator's signed output."""
    foreign = settings.foreign_landing_files()
    if not foreign:
        return
    legacy = settings.simulation_manifest.exists() and not settings.is_simulated
    raise ForeignLandingError(
        f"{settings.landing} holds {len(foreign)} file(s) this data root's simulator did "
        f"not write (e.g. {', '.join(sorted(foreign)[:5])}): they may be real exports, so "
        "nothing is deleted. Move them away, or simulate into another data root "
        "(BCLAKE_HOME or --out)."
        + (
            f" Its {SIMULATION_MANIFEST} is not signed by this root's key (planted, copied, "
            "edited, or from an older bclake): if it is an old demo, remove landing/ yourself."
            if legacy
            else ""
        )
    )


def simulate(
    root: Path,
    scale: str = "demo",
    seed: int = 42,
    progress: bool = True,
    dirt: float | None = None,
    scenario: str = "none",
) -> dict:
    """Write `root/landing` and `root/truth` afresh; returns rows written per table.

    `scenario` plants a named supply shock (`scenarios`, listed in
    `truth/scenario.parquet`); `none` leaves the world exactly as it is.
    Raises ValueError for an unknown scale or scenario and ForeignLandingError, before
    anything is deleted, when `root/landing` holds anything but this root's simulator's
    signed output (`Settings.foreign_landing_files`).
    """
    cfg = get_scale(scale)
    check_scenario(scenario)
    if dirt is not None:
        cfg = replace(cfg, dirt=dirt)
    settings = Settings.from_env(root)
    _own_landing(settings)
    state = _new_state(cfg, seed, scenario)
    for folder in (root / "landing", root / "truth"):
        if folder.exists():
            shutil.rmtree(folder)
    # signed before the first export: a run killed half way leaves a landing that is all
    # the simulator's own, which the next `simulate` may delete
    _write_manifest(settings, {"scale": cfg.name, "seed": seed, "complete": False})
    run = _Run.open(state, root)
    _write_masters(run)
    months = state.calendar["date"].dt.strftime("%Y-%m").to_list()
    _run_days(run, range(cfg.n_days), lambda t: months[t], progress)
    end = cfg.n_days - 1
    _snapshots(run, "opening", end)
    truth.write_truth(state, run.truth, end)
    manifest = inject_dirt(run.out.landing.root, cfg, state.streams.dirt)
    manifest.write_parquet(run.truth / "fault_manifest.parquet")
    meta = {
        "scale": cfg.name,
        "seed": seed,
        "config": asdict(cfg),
        "days": cfg.n_days,
        "rows": run.out.landing.rows,
        "faults": manifest.group_by("fault").len().sort("fault").rows(),
        "complete": True,
        "landing_files": {rel: size for rel, (size, _) in settings.landing_sizes().items()},
    }
    _write_manifest(settings, meta)
    state.save(run.truth / STATE)
    return run.out.landing.rows


def _write_manifest(settings: Settings, meta: dict) -> None:
    """`meta` as landing/_simulation.json, signed (`Settings.sign_simulation`) and
    replaced atomically."""
    raw = json.dumps(meta, default=str, indent=2, ensure_ascii=False).encode("utf-8")
    path = settings.simulation_manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    settings.sign_simulation(raw)
    os.replace(tmp, path)


def continue_simulation(
    root: Path, days: int, progress: bool = True, scenario: str | None = None
) -> dict:
    """Append the next `days` days as daily export files; a share of rows arrives a run late.

    The saved scenario goes on; `scenario`, when given, must name it. Returns
    rows written per table by this call. Raises FileNotFoundError when
    `root` holds no saved simulation, ValueError past the planned horizon or for another
    scenario than the saved one, and
    ForeignLandingError when landing/'s manifest is not signed by this root's simulator.
    The manifest then lists the files it listed, unchanged, and those this call wrote;
    a file someone else dropped in meanwhile stays foreign.
    """
    path = root / "truth" / STATE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `bclake simulate` first")
    settings = Settings.from_env(root)
    meta = settings.simulation_meta()
    if meta is None:
        raise ForeignLandingError(
            f"{settings.simulation_manifest} is missing or not signed by this data root's "
            "simulator: not a simulated landing, so nothing is added to it."
        )
    before = settings.landing_sizes()
    state = SimState.load(path)
    cfg, first = state.cfg, state.next_day
    saved = state.scenario.name if state.scenario is not None else "none"
    if scenario is not None and check_scenario(scenario) != saved:
        raise ValueError(
            f"the world was simulated with scenario {saved!r}, which --continue carries on; "
            f"simulate it afresh for {scenario!r}"
        )
    if first + days > cfg.horizon_days:
        raise ValueError(
            f"the world is planned for {cfg.horizon_days} days; "
            f"{first} are simulated, so at most {cfg.horizon_days - first} remain"
        )
    # the world may have been moved or copied since it was saved: write where it is now
    run = _Run.open(state, root)
    run.out.landing.deliver_late()
    state.late.share = LATE_SHARE
    dates = state.calendar["date"].to_list()
    _run_days(run, range(first, first + days), lambda t: dates[t].isoformat(), progress, True)
    end = first + days - 1
    _snapshots(run, dates[end].isoformat(), end)
    truth.write_truth(state, run.truth, end)
    meta["days"] = end + 1
    meta.setdefault("continued", []).append(
        {"from": dates[first].isoformat(), "days": days, "rows": run.out.landing.rows}
    )
    listed = meta.get("landing_files") or {}
    meta["landing_files"] = {
        rel: size
        for rel, (size, mtime) in settings.landing_sizes().items()
        if before.get(rel) != (size, mtime) or listed.get(rel) == size
    }
    _write_manifest(settings, meta)
    state.save(path)
    return run.out.landing.rows


@dataclass
class _Run:
    """One call's view of a world: its state, where files go, and what is derived from it."""

    state: SimState
    out: Out
    model: scans.ScanModel
    truth: Path
    programmes: Programmes  # the brand's incentive programmes (`Settings.incentives_file`)
    consent_until: np.ndarray  # per world consumer: first day without marketing consent

    @classmethod
    def open(cls, state: SimState, root: Path) -> _Run:
        lookup = Lookup.of(state.cfg.start, state.world)
        landing = Landing(root / "landing", state.late, state.streams.late)
        if state.book is None:
            state.book = incentives.EvidenceBook(len(state.world.stores), len(lookup.sku_codes))
        return cls(
            state=state,
            out=Out(landing, lookup, state.serials),
            model=scans.ScanModel.of(state.cfg, state.world, lookup),
            truth=root / "truth",
            programmes=load_programmes(Settings.from_env().incentives_file),
            consent_until=consumers.consent_until(
                state.world.consumers["consent_marketing"].to_numpy(),
                np.arange(len(state.world.consumers)),
                state.salt,
            ),
        )


def _new_state(cfg: ScaleConfig, seed: int, scenario: str = "none") -> SimState:
    """Draw the world and everything planned up front, each concern from its own stream.

    The scenario's shocks are planned last, from a generator of their own.
    """
    streams = Streams.from_seed(seed)
    world = build_world(cfg, streams.world)
    calendar = build_calendar(cfg.start, cfg.horizon_days)
    promos = promotions(cfg, world, streams.promotions)
    signups = promotion_signups(promos, world, streams.promotions)
    display = display_compliance(cfg, world, streams.display)
    check_day, check_done = trade.check_visits(
        cfg.start, display.shape[0], len(world.stores), streams.display
    )
    n_months = month_number(cfg.start, cfg.start + timedelta(days=cfg.horizon_days - 1)) + 1
    market = build_market(n_months, len(world.provinces), len(world.categories), streams.market)
    share_noise = streams.market.normal(0, 1, market.price_index.size)
    # the latent market and cost to serve, from a stream of their own: nothing above moves
    geo, world.consumers = geography.settle(cfg, world, market, streams.geography)
    costs = economics.CostModel.draw(cfg, world, streams.geography)
    channel = Channel(
        cfg, world, calendar, promos, signups, display, market, streams.channel, geo.visitor
    )
    lookup = Lookup.of(cfg.start, world)
    n_consumers = len(world.consumers)
    photo_reuse = trade.photo_reuse_plan(
        check_day,
        check_done,
        display,
        channel.onboard_day,
        lookup.dist_of_store,
        cfg.n_days,
        cfg.photo_reuse_rate,
        streams.photos,
    )
    return SimState(
        cfg=cfg,
        seed=seed,
        streams=streams,
        world=world,
        calendar=calendar,
        promos=promos,
        signups=signups,
        display=display,
        check_day=check_day,
        check_done=check_done,
        market=market,
        share_noise=share_noise,
        diversion=diversion_plan(
            world, lookup.dist_of_store, cfg.diversion_share, cfg.n_days, streams.diversion
        ),
        group_members=consumers.group_members(world, cfg.start, cfg.horizon_days, streams.groups),
        mini_program_day=consumers.mini_program_days(
            n_consumers, cfg.horizon_days, streams.registration
        ),
        salt=int(streams.registration.integers(2**62)),
        channel=channel,
        ledger=CodeLedger(len(lookup.dist_codes), len(lookup.sku_codes), lookup.case_pack),
        first_scan=np.full(n_consumers, consumers.NEVER, dtype=np.int64),
        photo_reuse=photo_reuse,
        farming=scans.farming_plan(cfg, world, channel.onboard_day, streams.farming),
        book=incentives.EvidenceBook(len(world.stores), len(lookup.sku_codes)),
        photo_salt=int(streams.photos.integers(2**62)),
        scenario=plan_scenario(scenario, cfg, seed, world, channel, calendar),
        geography=geo,
        costs=costs,
        channel_book=economics.ChannelBook(len(world.stores), len(world.distributors)),
    )


def _write_masters(run: _Run) -> None:
    """Masters of every system, and the codes of the stock already in the channel."""
    st, out = run.state, run.out
    erp.masters(out, st.world)
    dms.masters(out, st.world, st.promos, st.signups)
    cdp.masters(out, st.world)
    # stock already in the channel when the window opens carries codes too
    # (twice what is on hand, so the opening stream covers the first weeks' sales)
    init = st.channel.opening_stock() * 2
    d, k = np.nonzero(init)
    pack = out.lookup.case_pack[k]
    units = (np.ceil(init[d, k] / pack) * pack).astype(np.int64)
    cases = trade.activate_cases(st.ledger, OPENING_DAY, d, k, units, st.streams.activation)
    code.case_activations(out, "case_activations_opening", cases)


def _run_days(
    run: _Run, days: range, label: Callable[[int], str], progress: bool, daily: bool = False
) -> None:
    """Step the channel through `days`, flushing at each label change (month or day)."""
    st = run.state
    buffer: list[DayRecord] = []
    steps = track(f"simulate {len(days)} days", total=len(days), unit="days")
    with steps if progress else nullcontext() as task:
        for t in days:
            effects = st.scenario.effects(t, st.channel) if st.scenario is not None else None
            record = st.channel.step(t, st.streams.channel, effects, st.streams.visitors)
            buffer.append(record)
            st.stockouts.append(record.stockouts)
            st.next_day = t + 1
            if daily or t == days[-1] or label(t + 1) != label(t):
                _flush(run, label(t), buffer)
                buffer = []
            if task is not None:
                task.advance(note=label(t))


def _flush(run: _Run, label: str, days: list[DayRecord]) -> None:
    """Everything the systems record about `days` (consecutive), in files named by `label`."""
    st, out, world = run.state, run.out, run.state.world
    first_day, last_day = days[0].day, days[-1].day
    st.ledger.prune()
    _supply(run, label, days)
    sales = stack_days(days, "sales", ["s", "k", "qty", "price"])
    dms.sell_through(out, label, sales, world.stores["has_pos"].to_numpy())
    orders = dms.store_orders(
        out,
        label,
        days,
        world.stores["mini_program_active"].to_numpy(),
        st.cfg.n_days,
        st.streams.ordering,
    )
    st.book.add_store_orders(
        orders.filter(pl.col("qty_delivered") > 0).select("s", "day", "amount"), out.lookup
    )
    dms.store_inventory(out, label, days, world.stores["mini_program_active"].to_numpy())
    checks = trade.display_checks(
        st.check_day,
        st.check_done,
        st.display,
        st.channel.onboard_day,
        first_day,
        last_day,
        st.streams.display,
    )
    reported, reused = trade.reported_checks(
        checks, st.photo_reuse, len(world.stores), st.photo_salt
    )
    dms.display_checks(out, label, reported)
    st.book.add_checks(checks, reported)
    st.channel_book.add(days, sales, checks, st.costs)
    genuine, firsts, farm_visits, farmed = _product_scans(run, label, sales, first_day, last_day)
    truth.write_reward_fraud(
        run.truth,
        label,
        reused.join(checks.select("m", "s", "day"), on=["m", "s"]),
        farmed,
        out.lookup,
    )
    _consumer_side(run, label, first_day, last_day, genuine, firsts, farm_visits)
    truth.write_demand(run.truth, label, days, out.lookup)


def _supply(run: _Run, label: str, days: list[DayRecord]) -> None:
    """Cases activated on shipment, shipments, invoices, DC stock and the plants."""
    st, out = run.state, run.out
    cases = []
    for day in days:
        d, k, _, shipped = day.dist_orders
        ok = shipped > 0
        if ok.any():
            cases.append(
                trade.activate_cases(
                    st.ledger, day.day, d[ok], k[ok], shipped[ok], st.streams.activation
                )
            )
    if cases:
        code.case_activations(out, f"case_activations_{label}", pl.concat(cases))
    lines = erp.shipments(out, label, days)
    if not lines.is_empty():
        invoices = trade.invoices(lines, st.world, st.streams.payment)
        erp.invoices(out, label, invoices)
        st.unpaid.append(invoices)
        st.book.add_invoices(invoices, out.lookup)
    erp.dc_inventory(out, label, days)
    erp.plants(out, label, days, st.world)


def _product_scans(
    run: _Run, label: str, sales: pl.DataFrame, first_day: int, last_day: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Product scans of `sales` and the farming bursts, with their labels in truth.

    The largest log is produced in parts of whole days, so memory stays
    bounded. Returns (s, k, c, day, seconds, label of the non-forged scans;
    the first scans ever of genuine codes, from `EvidenceBook.first_scans`;
    the farming accounts' store-code scans; the farmed product scans written).
    """
    st, out, streams = run.state, run.out, run.state.streams
    days_of = sales["day"].to_numpy()
    n_parts = max(1, -(-sales.height // SCAN_PART_SALES_ROWS))
    bounds = [b for b in np.array_split(np.arange(first_day, last_day + 1), n_parts) if len(b)]
    genuine, firsts, visits, farmed = [], [], [], []
    for i, b in enumerate(bounds):
        part = label if n_parts == 1 else f"{label}_p{i + 1}"
        drawn = scans.all_scans(
            sales.filter(pl.Series((days_of >= b[0]) & (days_of <= b[-1]))),
            run.model,
            st.ledger,
            st.diversion,
            st.cfg,
            streams.scans,
            streams.diversion,
            streams.fakes,
            streams.travel,
            streams.bulk,
            streams.home_scans,
        )
        farm, farm_visits = scans.farmed_scans(
            st.farming, int(b[0]), int(b[-1]), st.world, run.model, st.ledger, streams.farming
        )
        if farm.height:
            drawn = pl.concat([drawn, farm], how="vertical_relaxed")
            visits.append(farm_visits)
        extra = st.ledger.take_side_cases()
        if extra is not None:  # diverters' extra stock, activated to them before it was scanned
            code.case_activations(out, f"case_activations_{part}_extra", extra)
        written = code.product_scans(out, f"product_scans_{part}", drawn)
        truth.write_scan_labels(run.truth, part, written, out.lookup)
        firsts.append(st.book.first_scans(written))
        farmed.append(
            written.filter(pl.col("label") == "farmed").select("scan_id", "s", "c", "scan_date")
        )
        genuine.append(
            written.filter(pl.col("label") != "forged").select(
                "s", "k", "c", "day", "seconds", "label"
            )
        )
    schema = consumers.no_visits().schema
    return (
        pl.concat(genuine),
        pl.concat(firsts),
        pl.concat([v.cast(schema) for v in visits]) if visits else consumers.no_visits(),
        pl.concat(farmed),
    )


def _consumer_side(
    run: _Run,
    label: str,
    first_day: int,
    last_day: int,
    genuine: pl.DataFrame,
    firsts: pl.DataFrame,
    farm_visits: pl.DataFrame,
) -> None:
    """Registrations, store-code scans, campaigns and coupons, group activity, referrals.

    Also links the first scans of genuine codes (`firsts`) to the store-code
    scans after them: the verified-scan evidence of the incentive programmes.
    """
    st, out, world, streams = run.state, run.out, run.state.world, run.state.streams
    consumers.first_scans(st.first_scan, genuine)
    shoppers = genuine.filter(pl.col("label") != "farmed")
    visits = scans.store_code_scans(shoppers, world, out.lookup.retail_price, streams.store_scans)
    # a coupon campaign on the first of every month after the first
    for day in range(first_day, last_day + 1):
        if day > 0 and (st.cfg.start + timedelta(days=day)).day == 1:
            _campaign(run, label, day)
    due = st.scheduled.filter(pl.col("day") <= last_day)
    st.scheduled = st.scheduled.filter(pl.col("day") > last_day)
    schema = consumers.no_visits().schema
    every = pl.concat([visits.cast(schema), due.cast(schema), farm_visits.cast(schema)])
    code.store_scans(out, label, every)
    st.book.add_scans(firsts, every, out.lookup.dist_of_store, run.consent_until)
    expired = [c for c in st.pending_coupons if c["expire_day"][0] <= last_day]
    st.pending_coupons = [c for c in st.pending_coupons if c["expire_day"][0] > last_day]
    cdp.coupons(out, label, expired)
    acts = consumers.interactions(st.group_members, world, first_day, last_day, streams.groups)
    cdp.interactions(out, label, acts, world)
    refs = consumers.referrals(
        shoppers["c"].to_numpy(), world, first_day, last_day, streams.referrals
    )
    if refs.height:
        st.referrals.append(refs)


def _campaign(run: _Run, label: str, day: int) -> None:
    """Draw a campaign; coupons are exported when they expire, purchases on their day."""
    st, world = run.state, run.state.world
    no = len(st.campaigns) + 1
    row, drawn = consumers.campaign(
        no,
        world,
        st.first_scan < day,
        run.consent_until > day,
        day,
        st.cfg.start,
        st.streams.campaigns,
    )
    st.campaigns.append(row)
    truth.write_campaign_outcomes(run.truth, label, row, drawn)
    cdp.campaign_members(run.out, label, row, drawn)
    numbers = st.serials.take("coupon", int(drawn["treated"].sum()))
    coupons, purchases = consumers.coupons_and_purchases(row, drawn, world, numbers, day)
    st.pending_coupons.append(coupons)
    st.scheduled = pl.concat([st.scheduled, purchases])


def _snapshots(run: _Run, label: str, end_day: int) -> None:
    """What systems export as of `end_day`: payments, rebates, market months, CDP masters."""
    st, out, world = run.state, run.out, run.state.world
    since = st.written_until
    paid, st.unpaid = trade.due_payments(st.unpaid, st.cfg.start, end_day)
    erp.payments(out, label, paid)
    _incentives(run, label, since, end_day)
    share = brand_share(st.market, st.share_noise)
    market_exports.closed_months(out, label, st.market, share, world, since, end_day)
    cdp.campaigns(out, label, st.campaigns[st.campaigns_written :])
    st.campaigns_written = len(st.campaigns)
    cdp.group_members(out, label, st.group_members, world, end_day)
    everyone, refs = consumers.registered(
        world, st.group_members, st.first_scan, st.mini_program_day, st.referrals, st.salt, end_day
    )
    cdp.consumers(out, label, consumers.with_profile_gaps(everyone, st.salt))
    cdp.referrals(out, label, refs, len(world.consumers), since)
    truth.write_consumers(run.truth, everyone)
    st.written_until = end_day


def _incentives(run: _Run, label: str, since: int, end_day: int) -> None:
    """The DMS pays the programme periods due in (since, end_day]; the truth of ended periods.

    Writes `dms.rebates`, `truth/rebate_payment_errors/<label>` and
    `truth/incentive_earned/<label>` (both possibly empty), then drops
    evidence no open period needs.
    """
    st, out, look = run.state, run.out, run.out.lookup
    onboard = st.channel.onboard_day
    due = incentives.dms_due(st.book, run.programmes, look, onboard, since, end_day)
    payees = {
        "distributor": list(look.dist_codes),
        "store": [str(c) for c in look.store_codes],
    }
    paid, errors = incentives.pay(
        due, payees, lambda n: st.serials.take("rebate", n), st.streams.rebates
    )
    dms.rebates(out, label, paid)
    truth.write_part(run.truth, "rebate_payment_errors", label, errors)
    earned = incentives.true_earned(st.book, run.programmes, look, onboard, end_day)
    truth.write_part(run.truth, "incentive_earned", label, earned)
    st.book.prune(run.programmes, look.start, end_day)
