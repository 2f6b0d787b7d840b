"""`bclake`: the command line for everything users run outside Dagster."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bclake.core.progress import set_quiet
from bclake.core.settings import Settings
from bclake.simulator.config import SCALES, SCENARIOS

app = typer.Typer(
    help="bclake: FMCG B+C analytics lakehouse.", no_args_is_help=True, add_completion=False
)
console = Console()


@app.callback()
def main(
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress bars or progress log lines (also: BCLAKE_QUIET=1).",
        ),
    ] = False,
) -> None:
    """bclake: FMCG B+C analytics lakehouse."""
    if quiet:
        set_quiet(True)


@app.command()
def simulate(
    scale: Annotated[str, typer.Option(help=f"World size: {', '.join(SCALES)}.")] = "demo",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Data root (default BCLAKE_HOME).")] = None,
    continue_: Annotated[
        bool, typer.Option("--continue", help="Append the next days to an existing world instead.")
    ] = False,
    days: Annotated[int, typer.Option(help="With --continue: how many days to add.")] = 1,
    scenario: Annotated[
        str | None,
        typer.Option(
            help=f"Plant a named supply shock in the last weeks: {', '.join(SCENARIOS)} "
            "(default none; listed in truth/scenario.parquet). --continue carries on the "
            "world's own scenario.",
        ),
    ] = None,
) -> None:
    """Simulate source-system exports into landing/ and the hidden truth into truth/."""
    from bclake.simulator.run import ForeignLandingError, continue_simulation
    from bclake.simulator.run import simulate as run

    settings = Settings.from_env(out)
    started = time.perf_counter()
    try:
        if continue_:
            rows = continue_simulation(settings.home, days, scenario=scenario)
            title = f"added {days} day(s) to the world in {settings.home}"
        else:
            rows = run(settings.home, scale=scale, seed=seed, scenario=scenario or "none")
            shock = f", scenario {scenario}" if scenario and scenario != "none" else ""
            title = f"simulated {scale} world (seed {seed}{shock}) in {settings.home}"
    except (ForeignLandingError, ValueError) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in sorted(rows.items()):
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.1f}s")


@app.command()
def contracts(
    out: Annotated[Path | None, typer.Option(help="Write the page here instead of stdout.")] = None,
    dbt: Annotated[
        bool, typer.Option("--dbt", help="Also regenerate the dbt sources and staging models.")
    ] = False,
) -> None:
    """Render the source data contracts (contracts/*.yaml) as a Markdown page."""
    from bclake.core.contracts import load_contracts, render_markdown
    from bclake.core.settings import DBT_PROJECT_DIR

    page = render_markdown(load_contracts())
    if dbt:
        from bclake.core.dbt_codegen import write_all

        written = write_all(list(load_contracts().values()), DBT_PROJECT_DIR)
        console.print(f"wrote {len(written)} files to {DBT_PROJECT_DIR}")
    if out is None:
        if not dbt:
            typer.echo(page)
    else:
        out.write_text(page + "\n", encoding="utf-8")
        console.print(f"wrote {out}")


@app.command()
def kpis(
    out: Annotated[Path | None, typer.Option(help="Write the page here instead of stdout.")] = None,
) -> None:
    """Render the KPI definitions (dbt_project/kpis.yml) as a Markdown page."""
    from bclake.core.kpis import load_kpis, render_markdown

    page = render_markdown(load_kpis())
    if out is None:
        typer.echo(page)
    else:
        out.write_text(page + "\n", encoding="utf-8")
        console.print(f"wrote {out}")


WAIT_OPTION = typer.Option(
    "--wait",
    help="When another run is writing to this data root, wait for it instead of stopping.",
)


@app.command()
def pipeline(wait: Annotated[bool, WAIT_OPTION] = False) -> None:
    """Materialise every asset over what is in landing/; exit 1 on any failure, 3 when
    another run is writing to the data root (see --wait)."""
    _run_pipeline(None, wait)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    end: Annotated[str | None, typer.Option("--end", help="Last day (default: start).")] = None,
    wait: Annotated[bool, WAIT_OPTION] = False,
) -> None:
    """Re-ingest the landing files that fed the days start..end, then rebuild downstream.

    The same as a backfill of those lake partitions launched from the Dagster UI.
    """
    _run_pipeline((start, end or start), wait)


@app.command()
def ingest(
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="Only this table, SYSTEM.TABLE (e.g. dms.stores); repeat for more. "
            "Default: every table.",
        ),
    ] = None,
    wait: Annotated[bool, WAIT_OPTION] = False,
) -> None:
    """Run only the lake stage over what is in landing/: the same lake assets as the
    pipeline (ledger, quarantine, checks), then erasure and retention; no warehouse is
    built and nothing is published. Prints the ledger of the files this run took; exit 1
    on a failure, 2 for an unknown table, 3 when another run is writing."""
    from bclake.orchestration.run import lake_stage

    try:
        assets = lake_stage(table or ())
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    _run_pipeline(None, wait, assets=assets, what="ingest")


def _run_pipeline(
    backfill_days: tuple[str, str] | None,
    wait: bool,
    assets: list | None = None,
    what: str = "pipeline",
) -> None:
    settings = Settings.from_env()
    dagster_home(settings)

    from dagster import DagsterEventType, DagsterInstance

    from bclake.core.locks import DataRootBusy
    from bclake.core.scrub import ScrubError
    from bclake.orchestration.run import run_pipeline

    started = time.perf_counter()
    try:
        result = run_pipeline(
            str(settings.home),
            DagsterInstance.get(),
            backfill=backfill_days,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            wait=None if wait else 0,
            assets=assets,
        )
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    except DataRootBusy as error:
        console.print(f"[red]{error}")
        raise typer.Exit(3) from error
    except ScrubError as error:  # a run log an erased identifier could not be taken out of
        console.print(f"[red]{error}")
        raise typer.Exit(1) from error
    failed_checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and not e.event_specific_data.passed
    ]
    table = Table(title=f"{what} run {result.run_id[:8]} over {settings.home}")
    table.add_column("step")
    table.add_column("status")
    for step in result.get_step_success_events():
        table.add_row(step.step_key, "[green]success")
    for step in result.get_failed_step_keys():
        table.add_row(step, "[red]failed")
    console.print(table)
    for check in failed_checks:
        console.print(
            f"[yellow]check failed: {check.asset_key.to_user_string()} "
            f"{check.check_name} ({check.severity.value})"
        )
    blocking = [c for c in failed_checks if c.severity.value == "ERROR"]
    console.print(f"finished in {time.perf_counter() - started:.1f}s")
    if assets is not None:  # the lake stage: what each table took
        _print_lake_summary(result)
    if not result.success or blocking:
        if assets is None:
            console.print("[red]pipeline failed: nothing new was published.")
        else:
            console.print(f"[red]{what} failed: see the failed steps and checks above.")
        raise typer.Exit(1)


# the lake assets' metadata -> a header narrow enough for an 80-column terminal
LAKE_COLUMNS = {
    "files_new": "files",
    "files_skipped": "skipped",
    "files_rejected": "rejected",
    "rows_in": "rows",
    "rows_loaded": "loaded",
    "rows_quarantined": "quarantined",
}


def _print_lake_summary(result: Any) -> None:
    """Per lake table of `result` (a run's `ExecuteInProcessResult`): the files it took
    and skipped, the rows in, loaded and quarantined (the lake assets' metadata)."""
    rows = []
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        path = mat.asset_key.path
        if path[0] == "lake" and "files_new" in mat.metadata:
            values = {
                h: mat.metadata[c].value for c, h in LAKE_COLUMNS.items() if c in mat.metadata
            }
            rows.append((".".join(path[1:]), values))
    _print_table(
        "lake tables (files new, skipped, rejected; rows)", ("table", *LAKE_COLUMNS.values()), rows
    )
    console.print("every file: `bclake ledger`; quarantined rows: lake/_quarantine/")


def _print_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, dict]]) -> None:
    """A table with a name column, then `columns` read from each row's dict (- if absent)."""
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for name, values in rows:
        table.add_row(name, *(_cell(values.get(c)) for c in columns[1:]))
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


@app.command()
def forecast(
    input: Annotated[Path, typer.Option("--input", help="Long sales table, CSV or Parquet.")],
    id_cols: Annotated[str, typer.Option("--id-cols", help="Series key columns, a,b,c.")],
    date_col: Annotated[str, typer.Option("--date-col", help="Date column.")],
    target_col: Annotated[str, typer.Option("--target-col", help="Quantity to forecast.")],
    horizon: Annotated[int, typer.Option("--horizon", help="Periods ahead.")],
    out: Annotated[Path, typer.Option("--out", help="Output file, .csv, .parquet or .xlsx.")],
    freq: Annotated[
        str,
        typer.Option(
            "--freq",
            help="D (daily), W (weekly: a weekly table keeps its own weekday; daily rows "
            "become Monday weeks), M (calendar months) or Q (calendar quarters): rows dated "
            "inside a month or quarter count for it, are summed per series and forecast on "
            "its first day.",
        ),
    ] = "W",
    future: Annotated[
        Path | None,
        typer.Option("--future", help="Known-in-advance columns for the horizon (CSV/Parquet)."),
    ] = None,
    quantiles: Annotated[str, typer.Option("--quantiles", help="Comma-separated.")] = "0.1,0.5,0.9",
    backtest: Annotated[
        bool, typer.Option("--backtest", help="Also score a holdout of the last horizon.")
    ] = False,
    calendar: Annotated[
        str,
        typer.Option(
            "--calendar",
            help="cn: Chinese holidays as features; none: other markets (pass holidays "
            "as a --future column).",
        ),
    ] = "cn",
    tz: Annotated[
        str,
        typer.Option(
            "--tz",
            help="Time zone whose calendar date a timestamp with an offset is read as (IANA name).",
        ),
    ] = "Asia/Shanghai",
    duplicates: Annotated[
        str,
        typer.Option(
            "--duplicates",
            help="Several rows of one series and date: error (stop, with the count and an "
            "example), sum (parts of one total), last (later rows correct earlier ones).",
        ),
    ] = "error",
    fill: Annotated[
        str,
        typer.Option(
            "--fill",
            help="A period missing inside a series: missing (unknown, not a zero sale) or "
            "zero (nothing sold).",
        ),
    ] = "missing",
    choose: Annotated[
        bool,
        typer.Option(
            "--choose/--no-choose",
            help="Backtest the model on 2 rolling origins inside the history next to seasonal "
            "naive, moving average, exponential smoothing and the mean of the model and "
            "seasonal naive, and forecast each group of series (by volume) with the one of "
            "lowest MASE; the output's method column says which. Off by default: on public "
            "data it helped a weekly series and hurt a quarterly panel (BENCHMARKS.md).",
        ),
    ] = False,
) -> None:
    """Forecast any long sales table: one row per series x future date, with quantiles.

    Columns in --future are known in advance; other input columns are historical only.
    A report of what was read, changed or assumed is printed and written to
    <out>.report.json.
    """
    import polars as pl

    from bclake.ml.any_table import (
        ForecastReport,
        InputError,
        forecast_table,
        read_table,
        write_table,
    )
    from bclake.ml.metrics import METRICS

    started = time.perf_counter()
    report = ForecastReport(tz=tz)
    try:
        qs = tuple(float(q) for q in quantiles.split(","))
        if not all(0 < q < 1 for q in qs):
            raise InputError(f"--quantiles must lie strictly between 0 and 1: {quantiles}")
        df = read_table(input, date_col, "input", tz=tz, report=report, target_col=target_col)
        fut = read_table(future, date_col, "future", tz=tz, report=report) if future else None
        result = forecast_table(
            df,
            [c.strip() for c in id_cols.split(",")],
            date_col,
            target_col,
            horizon,
            freq,
            future=fut,
            quantiles=qs,
            backtest=backtest,
            calendar=calendar,
            fill=fill,  # type: ignore[arg-type]
            duplicates=duplicates,  # type: ignore[arg-type]
            report=report,
            choose=choose,
        )
        write_table(result.forecast, out, report=result.report)
        report_path = result.report.write(out)
    except (InputError, ValueError) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    console.print(
        f"{result.series:,} series, {df.height:,} input rows -> {result.forecast.height:,} "
        f"forecast rows in {out} ({time.perf_counter() - started:.1f}s)"
    )
    for line in result.report.lines():
        console.print(line, style="yellow" if line.startswith(("warning", "dropped")) else None)
    console.print(f"report: {report_path}")
    if result.backtest_scores is not None:
        overall = result.backtest_scores.filter(pl.col("horizon").is_null())
        _print_table(
            "holdout of the last horizon",
            ("method", *METRICS),
            [(r["method"], r) for r in overall.iter_rows(named=True)],
        )


@app.command()
def evaluate(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Score the pipeline's outputs against the simulator's truth (never read by the pipeline)."""
    from bclake.evaluation.channel import evaluate_channel
    from bclake.evaluation.forecast import evaluate_forecasts
    from bclake.evaluation.incentives import evaluate_incentives
    from bclake.evaluation.market_order import evaluate_market_order
    from bclake.evaluation.marketing import evaluate_marketing
    from bclake.evaluation.replenishment import evaluate_replenishment
    from bclake.evaluation.store_plans import evaluate_store_plans
    from bclake.evaluation.supply import evaluate_supply
    from bclake.evaluation.tags import evaluate_tags
    from bclake.ml.metrics import METRICS

    settings = Settings.from_env()
    if not (settings.truth / "deserved_tags.parquet").exists():
        console.print(
            f"[red]no simulator truth in {settings.truth}: evaluate needs a simulated world"
        )
        raise typer.Exit(2)
    if not settings.published_db.exists():
        console.print(f"[red]{settings.published_db} is missing: run `bclake pipeline` first")
        raise typer.Exit(2)
    report = {
        "tags": evaluate_tags(settings.truth, settings.published_db),
        "forecast": evaluate_forecasts(settings.truth, settings.published_db),
        "replenishment": evaluate_replenishment(settings.truth, settings.published_db),
        "market_order": evaluate_market_order(settings.truth, settings.published_db),
        "incentives": evaluate_incentives(settings.truth, settings.published_db),
        "marketing": {
            **evaluate_marketing(settings.truth, settings.published_db),
            "store_plans": evaluate_store_plans(settings.truth, settings.published_db),
        },
        "supply": evaluate_supply(settings.truth, settings.published_db),
        "channel": evaluate_channel(settings.truth, settings.published_db),
    }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=1, default=str))
        return
    table = Table(title="tags vs the simulator's truth")
    for col in ("tag", "deserved", "tagged", "precision", "recall"):
        table.add_column(col, justify="right" if col != "tag" else "left")
    for row in report["tags"]:
        table.add_row(*(str(row[c]) if row[c] is not None else "-" for c in row))
    console.print(table)
    for grain in ("region_sku_week", "store_sku_week"):
        f = report["forecast"][grain]
        _print_table(
            f"forecast {grain} backtest vs true demand ({f['rows']} rows)",
            ("method", *METRICS),
            list(f["vs_truth"].items()),
        )
    r = report["replenishment"]
    _print_table(
        f"replenishment closed loop, {r['items']} store x SKU, {r['window']}",
        ("policy", "fill_rate", "stockout_days", "avg_inventory", "turnover"),
        [(name, r[name]) for name in ("engine", "minmax", "minmax_matched") if r[name]],
    )
    console.print(
        f"turnover engine / min-max at equal fill rate: {r['turnover_ratio_vs_matched']} "
        f"(target {r['target_ratio']})"
    )
    m = report["market_order"]
    kinds = ("diversion", "forged_code", "cloned_code")
    _print_table(
        "market order alerts vs planted events",
        ("kind", "alerts", "precision", "true_events", "recall"),
        [(k, m[k]) for k in kinds],
    )
    _print_table(
        "per scan: alerts vs today's rules (cross-region, unknown code, scanned twice)",
        ("rule", "scans", "precision", "recall"),
        [(f"alerts {k}", m["scan_level"][k]) for k in kinds]
        + [(f"today {k}", m["baseline_scan_level"][k]) for k in kinds],
    )
    console.print(
        f"diversion episodes: {m['diversion']['episodes']}, missed "
        f"{m['diversion']['episodes_missed']}, median weeks to detect "
        f"{m['diversion']['median_weeks_to_detect']}"
    )
    _print_incentives(report["incentives"])
    _print_marketing(report["marketing"])
    _print_supply(report["supply"])
    _print_channel(report["channel"])


def _print_channel(ch: dict) -> None:
    if "skipped" in ch:
        console.print(f"channel optimisation skipped: {ch['skipped']}")
        return
    w = ch["white_space"]
    _print_table(
        f"white space vs true untapped units, k = {w['k']} of {w['cities']} cities "
        f"({w['planted']} planted)",
        ("ranking", "recall_at_k", "ndcg_at_k"),
        [("bclake", w), *w["baselines"].items()],
    )
    ie = ch["inefficient"]
    _print_table(
        "inefficient stores and distributors vs truly unprofitable",
        ("list", "n", "precision", "recall", "action_match"),
        [(k, ie[k]) for k in ("stores", "distributors")]
        + [(f"{k} {ie[k]['baseline']['rule']}", ie[k]["baseline"]) for k in ie],
    )


def _print_supply(sp: dict) -> None:
    if "skipped" in sp:
        console.print(f"supply plan replay skipped: {sp['skipped']}")
        return
    w = sp["window"]
    shock = f", shock: {sp['shock_scope']}" if sp["shock_scope"] else ""
    _print_table(
        f"supply plan closed loop on distributors' orders, {w['dcs']} DCs x {w['skus']} "
        f"SKUs, {w['start']}..{w['end']}"
        f"{shock}",
        ("policy", "dc_fill_rate", "lost_units", "avg_inventory", "transfer_cost", "recovery_days"),
        list(sp["policies"].items()),
    )
    console.print(
        f"lost units bclake / baseline: {sp['lost_vs_baseline']} at "
        f"{sp['inventory_vs_baseline']}x its inventory; at equal inventory (the baseline rule "
        f"at other cover targets): {sp['lost_vs_baseline_at_equal_inventory']}; "
        f"{sp['plan_seconds_per_week']} s per weekly plan"
    )
    c = sp["consumer_demand"]
    console.print(
        f"stress test, consumer demand straight from the DCs: fill rate bclake "
        f"{c['policies']['bclake']['dc_fill_rate']}, baseline "
        f"{c['policies']['baseline']['dc_fill_rate']}; lost units at equal inventory "
        f"{c['lost_vs_baseline_at_equal_inventory']}"
    )


def _print_marketing(mk: dict) -> None:
    lists = ("model", "random", "response_model", "oracle")
    _print_table(
        "marketing target lists at equal budget, by the true potential outcomes",
        ("list", "incremental_conversions", "incremental_revenue", "cost", "roi"),
        [(k, mk[k]) for k in lists],
    )
    console.print(
        f"ROI model / random - 1: {mk['roi_lift_vs_random']} (target >= 0.5); uplift ratio "
        f"{mk['uplift_ratio']}; Qini (truth) uplift model {mk['qini']}, response model "
        f"{mk['qini_response']}; listed without consent: {mk['listed_without_consent']}"
    )
    c = mk["store_plans"]["choices"]
    console.print(
        f"store plans (一店一策), true units of each store's first activity: plan "
        f"{c['plan_units']}, random activity {c['random_units']} (x{c['plan_vs_random']}), "
        f"best single activity for all x{c['plan_vs_best_uniform']}, "
        f"{c['share_of_oracle']} of the oracle"
    )


def _print_incentives(inc: dict) -> None:
    _print_table(
        "incentive statements vs true earned rewards (relative absolute error)",
        (
            "programme",
            "true_earned",
            "payable",
            "statement_error",
            "dms_paid",
            "baseline_dms_error",
        ),
        [("all", inc), *inc["per_programme"].items()],
    )
    f = inc["fraud"]
    _print_table(
        "reward fraud: held events vs planted fraud",
        ("kind", "alerts", "flagged_events", "fraud_events", "precision", "recall"),
        [(k, f[k]) for k in ("scan_farming", "photo_reuse", "all")]
        + [("today: daily cap", f["baseline_daily_cap"])],
    )
    rec = inc["reconciliation"]
    console.print(
        f"withheld rightly CNY {f['withheld_rightly']}, wrongly CNY {f['withheld_wrongly']}; "
        f"reconciliation found {rec['recall']} of {rec['planted_errors']} planted payment errors, "
        f"{rec['differences_without_planted_cause']} differences with no planted cause"
    )


@app.command("incentives")
def incentives_command(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Programme file (default: BCLAKE_INCENTIVES or config/incentives.yaml)."
        ),
    ] = None,
) -> None:
    """Validate an incentive programme file and print its programmes."""
    from bclake.core.incentives import ProgrammeError, load_programmes

    path = file or Settings.from_env().incentives_file
    try:
        programmes = load_programmes(path)
    except ProgrammeError as exc:
        console.print(f"[red]{exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"incentive programmes in {path}")
    for col in ("id", "name", "payee", "evidence", "period", "pays"):
        table.add_column(col)
    for p in programmes.programmes:
        if p.calculation == "per_event":
            pays = f"CNY {p.amount:g} per event"
            pays += f", at most {p.max_events}" if p.max_events else ""
        else:
            tiers = ", ".join(f"{t.rate:.2%} from {t.start:,.0f}" for t in p.tiers or [])
            pays = f"{p.tier_mode}: {tiers}"
        pays += f", cap CNY {p.cap:,.0f}" if p.cap else ""
        if p.compliance:
            pays += f", x{p.compliance.diversion_factor:g} with diversion"
        table.add_row(p.id, p.name_zh, p.payee, p.evidence, p.period, pays)
    console.print(table)


@app.command("hash-password")
def hash_password_command(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print a password hash for `password:` in the dashboards' users file."""
    from bclake.dashboards.auth import hash_password

    typer.echo(hash_password(password))


@app.command()
def erase(
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="The consumer's id in the CDP.")
    ] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The consumer's phone.")] = None,
    reason: Annotated[
        str, typer.Option(help="erasure_request, consent_withdrawn, account_closed or other.")
    ] = "erasure_request",
) -> None:
    """Request that a consumer be erased: writes a request to landing/cdp/erasure_requests/;
    the next pipeline run removes every row about them and records a receipt."""
    from bclake.ingest.erasure import write_request

    try:
        path, request_id = write_request(Settings.from_env(), consumer, phone, reason)
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    console.print(f"request {request_id} written to {path}; the next `bclake pipeline` erases")


@app.command("rotate-pii-key")
def rotate_pii_key() -> None:
    """Move every stored pseudonym to a new key, read from BCLAKE_PII_KEY_NEW (never from
    the command line). Stop Dagster first. Afterwards set BCLAKE_PII_KEY to the new key
    and append the old one to BCLAKE_PII_KEY_RETIRED; see docs/privacy.md."""
    from bclake.core.locks import DataRootBusy
    from bclake.core.scrub import ScrubError
    from bclake.ingest.rotation import KeyMismatch
    from bclake.orchestration.rotation import NEW_KEY_ENV, rotate

    settings = Settings.from_env()
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    try:
        done = rotate(settings, os.environ.get(NEW_KEY_ENV, ""), home, log=console.print)
    except (ValueError, RuntimeError, KeyMismatch, ScrubError, DataRootBusy) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    console.print(
        f"moved {done.pseudonyms:,} pseudonyms in {done.seconds:.1f}s: {done.lake_parts:,} "
        f"lake parts, {done.erasure_rows} erasure list rows, "
        + ", ".join(f"{n:,} values in {db}" for db, n in done.warehouse_values.items())
        + f", {done.files} export and run-log files"
    )
    console.print(
        "Now, before the next run: set BCLAKE_PII_KEY_RETIRED to its current value followed "
        "by the old BCLAKE_PII_KEY (white space between keys), set BCLAKE_PII_KEY to the "
        f"value of {NEW_KEY_ENV}, and unset {NEW_KEY_ENV}. Keep the retired keys: ingest "
        "needs the whole chain."
    )


@app.command()
def ledger(
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Print the ingest ledger: every landing file and what happened to its rows."""
    from bclake.ingest.ledger import read_ledger

    frame = read_ledger(Settings.from_env()).sort("system", "table", "file")
    if format == "json":
        typer.echo(
            json.dumps(
                frame.with_columns(frame["first_seen"].dt.to_string()).to_dicts(),
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    if format != "table":
        raise typer.BadParameter("--format must be table or json")
    table = Table(title="ingest ledger")
    columns = ("file", "status", "rows_in", "rows_loaded", "rows_quarantined", "rows_erased")
    for col in (*columns, "reason"):
        table.add_column(col, justify="right" if col.startswith("rows") else "left")
    for r in frame.iter_rows(named=True):
        table.add_row(
            r["file"],
            r["status"],
            f"{r['rows_in']:,}",
            f"{r['rows_loaded']:,}",
            f"{r['rows_quarantined']:,}",
            f"{r['rows_erased'] or 0:,}",
            r["reason"] or "",
        )
    console.print(table)


@app.command()
def check(
    file: Annotated[
        Path,
        typer.Argument(help="An export: CSV, TSV, NDJSON or XLSX.", exists=True, dir_okay=False),
    ],
    table: Annotated[
        str | None,
        typer.Option("--table", help="Contract SYSTEM.TABLE (default: from file name and header)."),
    ] = None,
    sample: Annotated[int, typer.Option(help="Quarantined rows to show.")] = 10,
) -> None:
    """Dry run of ingest for one file: its contract, encoding, delimiter, header map, rows
    that would load and a sample of those that would be quarantined, and why. Writes
    nothing; exit 1 when no contract fits or the file would be rejected whole."""
    from bclake.ingest.check import check_file, render

    report = check_file(file, table)
    console.print(render(report, sample))
    if not report.loadable:
        raise typer.Exit(1)


# -- servers -------------------------------------------------------------------------

# the interface the dashboards listen on unless told otherwise: this host only; reach
# them from elsewhere through a reverse proxy that terminates TLS (README, "Security")
SERVE_ADDRESS = "127.0.0.1"
# Dagster reports usage to its makers unless the instance's dagster.yaml says not to
DAGSTER_YAML = {"telemetry": {"enabled": False}}
# runs the Dagster daemon launched whose worker died (killed, out of memory) are marked
# failed by its run monitoring; set unless the instance's dagster.yaml says otherwise
# the `bclake` logger's lines (progress of long steps, `core.progress`) are kept in the run's
# log and shown with Dagster's own, at INFO, unless the instance's `python_logs` says otherwise
DAGSTER_DEFAULTS = {
    "run_monitoring": {"enabled": True},
    # the queue launches one run at a time per concurrency pool (the model fits' `models`
    # pool); within a run the writer lock orders the writing steps (README: "Sharing a small
    # machine")
    "concurrency": {"pools": {"granularity": "run", "default_limit": 1}},
    "python_logs": {"managed_python_loggers": ["bclake"], "python_log_level": "INFO"},
}


def dagster_home(settings: Settings) -> Path:
    """`DAGSTER_HOME` (the environment's, else `<BCLAKE_HOME>/dagster`), created, exported,
    with a dagster.yaml whose `telemetry.enabled` is false and whose `run_monitoring` is
    on, the run queue launches one run per concurrency pool at a time, and `python_logs`
    capture the `bclake` logger at INFO unless it says otherwise (other keys kept)."""
    import yaml

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    current = current if isinstance(current, dict) else {}
    wanted = DAGSTER_DEFAULTS | current | DAGSTER_YAML
    if wanted != current:
        path.write_text(yaml.safe_dump(wanted, sort_keys=False), encoding="utf-8")
    return home


def streamlit_command(port: int, address: str) -> list[str]:
    """The `streamlit run` command line `bclake serve` runs: the dashboards on
    `address`:`port`, headless, no usage statistics sent, uncaught errors shown to the
    visitor by type only (the server log keeps the rest), XSRF protection on."""
    from bclake import dashboards

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(dashboards.__file__).with_name("app.py")),
        f"--server.address={address}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=type",
        "--runner.magicEnabled=false",
    ]


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8501,
    address: Annotated[
        str,
        typer.Option(
            envvar="BCLAKE_SERVE_ADDRESS",
            help="The interface to listen on: 127.0.0.1 (this host only) unless you say "
            "otherwise; 0.0.0.0 listens on every interface.",
        ),
    ] = SERVE_ADDRESS,
) -> None:
    """Serve the dashboards over the published warehouse (replaces this process)."""
    console.print(f"Dashboards:    http://{address}:{port}")
    command = streamlit_command(port, address)
    os.execv(command[0], command)


@app.command()
def dagster(
    port: Annotated[int, typer.Option(help="The port of the Dagster UI.")] = 3000,
) -> None:
    """Serve the Dagster UI on the pipeline's definitions, on this host only, with
    Dagster's telemetry off (dagster.yaml in DAGSTER_HOME); replaces this process."""
    dagster_home(Settings.from_env())
    binary = Path(sys.executable).with_name("dagster")
    command = [str(binary), "dev", "-m", "bclake.orchestration.definitions"]
    command += ["-h", SERVE_ADDRESS, "-p", str(port)]
    os.execv(command[0], command)


if __name__ == "__main__":
    app()
