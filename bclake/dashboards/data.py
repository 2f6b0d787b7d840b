"""Data access for the dashboards: read-only, scoped queries on the published warehouse.

Every page goes through `query()`. It opens an in-memory DuckDB database per scope
in which `marts`, `ml`, `reference` and `audit` are views over the published file,
each already filtered to what the signed-in user may see. Pages write ordinary SQL
against those names and cannot forget a filter, because there is no unfiltered name
for them to reach. The rules, most specific column first:

- `store_code` in the user's stores, else `distributor_code` in their distributors,
  else `region` in their regions (`kpi_values` and the tag tables by scope/entity);
- market-order alerts (`fct_market_order_alerts`) concern two places, where the goods
  belong and where they turned up: a region sees an alert whose `origin_region` or
  `destination_region` is its region, a distributor one about its own goods
  (`distributor_code`) or whose `destination_distributors` (comma list) names it, a
  store none; an alert's evidence scans (`fct_market_order_alert_scans`) follow their
  alert (`alert_id` among the alerts that scope sees);
- incentive statements, their lines and their reconciliation with the DMS
  (`INCENTIVE_PAYEE_TABLES`) are scoped by the payee's `distributor_code` and `region`,
  so a distributor sees itself and its stores; a store sees only the rows whose payee
  it is (`payee_type = 'store'`, `payee_code` its own);
- reward-fraud alerts and their evidence (`FRAUD_TABLES`) follow the store they concern
  (`store_code`); a store sees none: an alert about it is a reviewer's business until
  it is decided, and its statement lines already say what is withheld and why;
- precision marketing: the plans' totals, the learners' scores and Qini curves, the
  campaigns' quality and the activity effects (`MARKETING_BRAND_TABLES`: no consumer and
  no store in them) are visible to everyone; the target lists, the scores and the
  features they come from are consumer-level and HQ's only (`MARKETING_CONSUMER_TABLES`).
  Every reader gets the lists' segments instead (`LIST_SEGMENTS`, a view made here, not
  a table): the listed consumers whose home store is in their scope, counted and summed
  per plan, arm and one segment dimension at a time (region, city tier, scenario tag,
  age band), a segment of fewer than `MIN_SEGMENT_CONSUMERS` pooled as null. Store plans
  (`fct_store_activity_plans`) follow their `store_code` like any store table;
- the supply plan (供应链联动) is HQ's and the regions': production is planned centrally,
  so a region reads the whole production plan and the plants' capacity history
  (`SUPPLY_COMPANY_TABLES`: plant x category, no region in them), its own DC's
  allocation and projection (by `region`) and the transfers and rush runs into or out of
  its DC (`SUPPLY_TRANSFERS`: `to_region` its region, or `from_warehouse` one of its
  warehouses); a distributor or store reads none of it. The plan's notes (inputs it could
  not use, to be fixed at HQ) are HQ's only, as no rule covers them;
- channel optimisation (渠道优化, `channel_filter`): the scores, the inefficient list and
  the economics marts (`CHANNEL_ENTITY_TABLES`) by `region` for a region and by
  `distributor_code` for a distributor (itself and its stores); the white space and the
  coverage plan (`CHANNEL_AREA_TABLES`) by `region` for a region, and for a distributor
  its territory: the cities of its region it is the nearest (serving) distributor of or
  its stores are in; the map's cells follow the white space. A store reads none of it, and
  the geography notes (`ml.channel_notes`) are HQ's;
- shared reference data (products, dates, product tags, backtest scores)
  is visible to everyone;
- consumer-level tables, intermediates and the audit schema are HQ only, and any
  table no rule covers is empty for everyone but HQ (deny by default).

Results are cached per scope and published version (the file's modification time),
so a new publish is picked up on the next rerun and a running job never blocks a reader.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import streamlit as st

from bclake.core.settings import Settings
from bclake.core.xlsx import write_csv, write_xlsx
from bclake.dashboards.auth import Scope, signed_in_user
from bclake.exports.planner import MARKETING_QUERIES
from bclake.exports.planner import QUERIES as PLANNER_QUERIES

SCHEMAS = ("marts", "ml", "reference", "audit")
PUBLIC = {
    "marts.dim_date",
    "marts.dim_product",
    "marts.product_tags",
    "ml.forecast_region_sku_week_scores",
    "ml.forecast_store_sku_week_scores",
}
# the marketing model's evaluation and plans, brand-wide and consumer-free
MARKETING_BRAND_TABLES = {
    "marts.fct_campaign_quality",
    "marts.fct_store_activity_effects",
    "ml.marketing_learner_scores",
    "ml.marketing_qini_curves",
    "ml.marketing_model_campaigns",
    "ml.marketing_plans",
}
PUBLIC |= MARKETING_BRAND_TABLES
# one row per consumer (and snapshot, campaign or plan): HQ only, whatever columns they carry
MARKETING_CONSUMER_TABLES = {
    "marts.fct_marketing_snapshots",
    "marts.fct_marketing_features",
    "marts.fct_marketing_category_features",
    "marts.fct_campaign_uplift_training",
    "marts.fct_marketing_candidates",
    "ml.marketing_scores",
    "ml.marketing_target_lists",
}
PUBLIC_SCHEMAS = {"reference"}
HQ_ONLY = {
    "marts.dim_consumer",
    "marts.user_tags",
    "marts.fct_campaign_responses",
    "marts.fct_coupons",
    "marts.fct_product_scans",
    # the KPI model's building blocks: scoped readers get kpi_values, already cut to their scope
    "marts.kpi_components",
    "marts.kpi_monthly",
    "marts.fct_store_weeks",
    # every consumer scan behind each alert candidate; readers get the raised alerts' scans
    "marts.fct_market_order_evidence",
    *MARKETING_CONSUMER_TABLES,
    # geography to fix at HQ: stores without coordinates, unknown cities
    "ml.channel_notes",
}
HQ_ONLY_SCHEMAS = {"audit", "intermediate"}
# (role, column) -> the scope table holding the ids that role may see in that column
SCOPE_COLUMNS = ("store_code", "distributor_code", "region")
# -- the SQL guard: what `ScopedWarehouse.query` runs (see `check_select`)
# the schemas a query may name: the scoped views' and DuckDB's catalogue views
QUERY_SCHEMAS = frozenset(SCHEMAS) | {"information_schema"}
# the table references a query may hold besides named views: joins, subqueries, VALUES
# lists, PIVOT; table functions (files, other catalogs, SQL from strings) and SHOW,
# DESCRIBE or SUMMARIZE are refused
QUERY_TABLE_REFS = frozenset(
    {"BASE_TABLE", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY", "PIVOT"}
)
# functions refused wherever they stand: file readers and system tables (also refused as
# table functions), SQL run from a string, settings, variables and sequences
REFUSED_FUNCTIONS = re.compile(
    r"read_\w*|duckdb_\w*|pragma_\w*|parquet_\w*|sniff_csv|glob|query|query_table"
    r"|json_execute_serialized_sql|sql_auto_complete|getvariable|current_setting|getenv"
    r"|nextval|currval|setseed|which_secret|(force_)?checkpoint|(enable|disable)_\w+",
    re.IGNORECASE,
)
# the connection settings every scoped connection ends with, in order: no file, network or
# extension access, and no setting can change after
LOCKDOWN = (
    "set enable_external_access = false",
    "set autoinstall_known_extensions = false",
    "set autoload_known_extensions = false",
    "set lock_configuration = true",
)


ALERTS = "marts.fct_market_order_alerts"
ALERT_SCANS = "marts.fct_market_order_alert_scans"
INCENTIVE_PAYEE_TABLES = {
    "marts.fct_incentive_statement_lines",
    "marts.fct_incentive_statements",
    "marts.fct_incentive_reconciliation",
}
FRAUD_TABLES = {"marts.fct_incentive_fraud_alerts", "marts.fct_incentive_fraud_evidence"}
# the supply plan's tables; the roles that see it at all
SUPPLY_PLAN = "ml.supply_production_plan"
SUPPLY_ALLOCATION = "ml.supply_dc_allocation"
SUPPLY_PROJECTION = "ml.supply_dc_projection"
SUPPLY_TRANSFERS = "ml.supply_transfers"
SUPPLY_NOTES = "ml.supply_notes"
PLANT_CAPACITY = "marts.fct_plant_capacity_weeks"
SUPPLY_ROLES = ("hq", "region")
# its company-wide tables: HQ's and the regions' (production feeds every DC)
SUPPLY_COMPANY_TABLES = {SUPPLY_PLAN, PLANT_CAPACITY}
# channel optimisation (渠道优化): the scores of stores and distributors, and the white
# space and the coverage plan, whose areas belong to a region and a distributor's territory
CHANNEL_SCORES = "ml.channel_scores"
CHANNEL_INEFFICIENT = "ml.channel_inefficient"
CHANNEL_WHITE_SPACE = "ml.channel_white_space"
CHANNEL_PLAN = "ml.channel_coverage_plan"
CHANNEL_CELLS = "ml.channel_area_cells"
CHANNEL_NOTES = "ml.channel_notes"
CHANNEL_ENTITY_TABLES = {
    CHANNEL_SCORES,
    CHANNEL_INEFFICIENT,
    "marts.fct_store_economics",
    "marts.fct_distributor_economics",
}
# the area tables' column naming the distributor an area would be served by
CHANNEL_AREA_TABLES = {
    CHANNEL_WHITE_SPACE: "nearest_distributor_code",
    CHANNEL_PLAN: "serving_distributor_code",
}
CHANNEL_TABLES = CHANNEL_ENTITY_TABLES | set(CHANNEL_AREA_TABLES) | {CHANNEL_CELLS}


class ScopeError(PermissionError):
    """A query the data-access layer refuses (no user signed in, or not a plain SELECT)."""


def _parser() -> duckdb.DuckDBPyConnection:
    """An empty DuckDB database that only parses (nothing is ever executed on it but
    `json_serialize_sql`), with no file access."""
    con = duckdb.connect(":memory:")
    for setting in LOCKDOWN:
        con.execute(setting)
    return con


_PARSER = _parser()
_PARSER_LOCK = threading.Lock()


def check_select(sql: str) -> None:
    """Raise ScopeError unless `sql` is one SELECT (WITH, FROM-first and set operations
    included) that reads only views and tables of `QUERY_SCHEMAS` and its own CTEs.

    DuckDB's own parser reads `sql` (`extract_statements`, then `json_serialize_sql` for
    the syntax tree), the parser that will run it, so no other parser's reading can
    differ from the engine's. Refused: more or other than one SELECT statement, a
    catalog-qualified name (the published file's alias, however spelled or built), an
    unqualified name that is not a CTE in scope (file paths, system views), a table
    function (`read_*`, `query_table`, `glob`, ...), SHOW/DESCRIBE/SUMMARIZE, and the
    functions `REFUSED_FUNCTIONS` names anywhere. Parameters (`?`) are fine.
    """
    with _PARSER_LOCK:
        try:
            statements = _PARSER.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                raise ScopeError(f"dashboards may only run one SELECT statement, not: {sql[:80]}")
            serialized = _PARSER.execute("select json_serialize_sql(?::varchar)", [sql]).fetchone()
        except duckdb.Error as error:
            raise ScopeError(f"not a query the dashboards run: {sql[:80]}") from error
    tree = json.loads(serialized[0]) if serialized else {"error": True}
    if tree.get("error") or len(tree.get("statements") or []) != 1:
        raise ScopeError(f"dashboards may only run one SELECT statement, not: {sql[:80]}")
    _check_node(tree["statements"][0]["node"], frozenset())


def _check_node(node: object, ctes: frozenset[str]) -> None:
    """Walk DuckDB's syntax tree; `ctes` are the CTE names in scope (a CTE sees itself
    and those before it, the query after them all)."""
    if isinstance(node, list):
        for item in node:
            _check_node(item, ctes)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict):
        visible = set(ctes)
        for entry in cte_map.get("map") or []:
            visible.add(str(entry.get("key", "")).lower())
            _check_node(entry.get("value"), frozenset(visible))
        ctes = frozenset(visible)
    if "class" not in node and {"alias", "sample", "query_location"} <= node.keys():
        _check_table_ref(node, ctes)
    if node.get("class") == "FUNCTION":
        _check_function(node)
    for key, value in node.items():
        if key != "cte_map":
            _check_node(value, ctes)


def _check_function(node: dict) -> None:
    name = str(node.get("function_name", ""))
    if node.get("catalog") or node.get("schema") or REFUSED_FUNCTIONS.fullmatch(name):
        raise ScopeError(f"dashboards may not call {name}()")


def _check_table_ref(node: dict, ctes: frozenset[str]) -> None:
    kind = str(node.get("type", ""))
    if kind not in QUERY_TABLE_REFS:
        raise ScopeError(f"dashboards may only read the scoped views, not a {kind.lower()}")
    if kind != "BASE_TABLE":
        return
    catalog, schema = node.get("catalog_name") or "", node.get("schema_name") or ""
    table = str(node.get("table_name", ""))
    if catalog or (schema and schema.lower() not in QUERY_SCHEMAS):
        raise ScopeError(f"dashboards may only read the scoped views, not {schema}.{table}")
    if not schema and table.lower() not in ctes:
        raise ScopeError(f"dashboards may only read the scoped views, not {table[:80]}")


def published_path() -> Path:
    return Settings.from_env().published_db


def published_version() -> float | None:
    """Modification time of the published warehouse, or None when nothing is published yet."""
    return _mtime(published_path())


# China keeps one offset all year (no daylight saving): Asia/Shanghai is UTC+8
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
# a working database untouched this long belongs to a run that stopped, not one under way
RUN_IDLE_SECONDS = 30 * 60


@dataclass(frozen=True)
class WarehouseStatus:
    """What the sidebar says about the data's age; times are Asia/Shanghai.

    `published_at`: when the published file was last replaced (None: never).
    `build_at`: the last write to the working database, set only when it is newer than
    the published file, i.e. a run has written data readers do not see yet.
    `running`: that write is recent (within `RUN_IDLE_SECONDS`), so a run is under way;
    False with `build_at` set means the last run stopped before publishing.
    """

    published_at: datetime | None
    build_at: datetime | None
    running: bool


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def warehouse_status(now: float | None = None) -> WarehouseStatus:
    """File times only: the working database is never opened (a run may hold its lock).

    `now` is seconds since the epoch (default: the clock); the build's time is the later of
    `build.duckdb` and its write-ahead log.
    """
    settings = Settings.from_env()
    published = published_version()
    build_times = [
        m
        for m in (_mtime(settings.build_db), _mtime(Path(f"{settings.build_db}.wal")))
        if m is not None
    ]
    build = max(build_times) if build_times else None
    if build is not None and published is not None and build <= published:
        build = None
    now = time.time() if now is None else now

    def local(ts: float | None) -> datetime | None:
        return None if ts is None else datetime.fromtimestamp(ts, SHANGHAI)

    return WarehouseStatus(
        published_at=local(published),
        build_at=local(build),
        running=build is not None and now - build < RUN_IDLE_SECONDS,
    )


@dataclass(frozen=True)
class ScopeMembers:
    regions: tuple[str, ...] | None  # None: every one (HQ)
    distributors: tuple[str, ...] | None
    stores: tuple[str, ...] | None


def members(con: duckdb.DuckDBPyConnection, alias: str, scope: Scope) -> ScopeMembers:
    """The regions, distributors and stores one scope covers, read from the dimensions."""
    if scope.role == "hq":
        return ScopeMembers(None, None, None)

    def codes(sql: str) -> tuple[str, ...]:
        return tuple(r[0] for r in con.execute(sql, [scope.scope_id]).fetchall())

    if scope.role == "region":
        return ScopeMembers(
            (str(scope.scope_id),),
            codes(f"select distributor_code from {alias}.marts.dim_distributor where region = ?"),
            codes(f"select store_code from {alias}.marts.dim_store where region = ?"),
        )
    if scope.role == "distributor":
        return ScopeMembers(
            (),
            (str(scope.scope_id),),
            codes(f"select store_code from {alias}.marts.dim_store where distributor_code = ?"),
        )
    return ScopeMembers((), (), (str(scope.scope_id),))


def _in(column: str, ids: tuple[str, ...] | None) -> str:
    if ids is None:
        return "true"
    if not ids:
        return "false"
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids)
    return f"{column} in ({quoted})"


def _listed(column: str, ids: tuple[str, ...] | None) -> str:
    """`column`, a comma-separated list, names one of `ids` (None: any)."""
    if ids is None:
        return "true"
    if not ids:
        return "false"
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids)
    return f"list_has_any(string_split(coalesce({column}, ''), ','), [{quoted}])"


def alert_filter(scope: Scope, m: ScopeMembers) -> str:
    """The WHERE clause of `marts.fct_market_order_alerts` for one scope: origin or
    destination region for a region, own goods or own territory for a distributor."""
    if scope.role == "hq":
        return "true"
    if scope.role == "region":
        return f"({_in('origin_region', m.regions)} or {_in('destination_region', m.regions)})"
    if scope.role == "distributor":
        return (
            f"({_in('distributor_code', m.distributors)} "
            f"or {_listed('destination_distributors', m.distributors)})"
        )
    return "false"


def table_rule(
    qualified: str, columns: list[str], scope: Scope, m: ScopeMembers, source: str = ""
) -> str | None:
    """The WHERE clause of a table with a rule of its own for a scoped (not HQ) reader:
    market-order alerts and their scans, a store's incentive rows, the supply plan's
    company-wide tables and its transfers, the channel plan's tables (see the module
    docstring); None for a table the column rules of `row_filter` cover."""
    if qualified == ALERTS:
        return alert_filter(scope, m) if "destination_distributors" in columns else "false"
    if qualified == ALERT_SCANS:
        if scope.role == "store" or "alert_id" not in columns:
            return "false"
        prefix = f"{source}." if source else ""
        return f"alert_id in (select alert_id from {prefix}{ALERTS} where {alert_filter(scope, m)})"
    if scope.role == "store" and qualified in INCENTIVE_PAYEE_TABLES:
        if not {"payee_type", "payee_code"} <= set(columns):
            return "false"
        return f"(payee_type = 'store' and {_in('payee_code', m.stores)})"
    if scope.role == "store" and qualified in FRAUD_TABLES:
        return "false"
    if qualified in SUPPLY_COMPANY_TABLES or qualified == SUPPLY_TRANSFERS:
        return supply_filter(qualified, columns, scope, m)
    if qualified in CHANNEL_TABLES:
        return channel_filter(qualified, columns, scope, m, source)
    return None


def supply_filter(qualified: str, columns: list[str], scope: Scope, m: ScopeMembers) -> str:
    """The WHERE clause of the supply plan's company-wide tables (every row for the
    `SUPPLY_ROLES`) and of its transfers (into or out of the region) for a scoped reader."""
    if scope.role not in SUPPLY_ROLES:
        return "false"
    if qualified in SUPPLY_COMPANY_TABLES:
        return "true"
    if not {"to_region", "from_region"} <= set(columns):
        return "false"
    return f"({_in('to_region', m.regions)} or {_in('from_region', m.regions)})"


def channel_filter(
    qualified: str, columns: list[str], scope: Scope, m: ScopeMembers, source: str = ""
) -> str:
    """The WHERE clause of a channel-optimisation table for a scoped (not HQ) reader.

    Scores and economics (`CHANNEL_ENTITY_TABLES`): a region its stores and distributors
    (`region`), a distributor itself and its stores (`distributor_code`), a store none:
    whether a store is worth serving is the brand's and its distributor's call. White
    space and the coverage plan (`CHANNEL_AREA_TABLES`): a region its region's cities; a
    distributor its territory: the cities of its region it would serve (the table's
    distributor column) or its stores are in (`province`, `city` of `marts.dim_store`); a
    store none. A city of another region it would serve is the brand's call: HQ's.
    The map's H3 cells (`CHANNEL_CELLS`): the city cells of the white space in scope; the
    store cells (counts, no code) are HQ's.
    """
    if scope.role == "store":
        return "false"
    prefix = f"{source}." if source else ""
    if qualified == CHANNEL_CELLS:
        if not {"kind", "adcode"} <= set(columns):
            return "false"
        white = channel_filter(
            CHANNEL_WHITE_SPACE,
            ["region", "province", "city", "nearest_distributor_code"],
            scope,
            m,
            source,
        )
        return (
            f"(kind = 'city' and adcode in "
            f"(select adcode from {prefix}{CHANNEL_WHITE_SPACE} where {white}))"
        )
    if qualified in CHANNEL_ENTITY_TABLES:
        needed = {"region": "region", "distributor": "distributor_code"}[scope.role]
        if needed not in columns:
            return "false"
        return _in(needed, m.regions if scope.role == "region" else m.distributors)
    serving = CHANNEL_AREA_TABLES[qualified]
    if scope.role == "region":
        return _in("region", m.regions) if "region" in columns else "false"
    if not {serving, "province", "city"} <= set(columns):
        return "false"
    if "region" not in columns:
        return "false"
    own_cities = (
        f"(province || '|' || city) in (select s.province || '|' || s.city "
        f"from {prefix}marts.dim_store as s where {_in('s.distributor_code', m.distributors)})"
    )
    own_region = (
        f"region in (select d.region from {prefix}marts.dim_distributor as d "
        f"where {_in('d.distributor_code', m.distributors)})"
    )
    return f"({own_region} and ({_in(serving, m.distributors)} or {own_cities}))"


def row_filter(
    qualified: str, columns: list[str], scope: Scope, m: ScopeMembers, source: str = ""
) -> str:
    """The WHERE clause one table gets for one scope (see the module docstring).

    `source` is the catalog the published file is attached as: a table scoped through
    another one (an alert's scans through their alert) reads that table there.
    """
    schema = qualified.split(".", 1)[0]
    if scope.role == "hq" or qualified in PUBLIC or schema in PUBLIC_SCHEMAS:
        return "true"
    if qualified in HQ_ONLY or schema in HQ_ONLY_SCHEMAS:
        return "false"
    own_rule = table_rule(qualified, columns, scope, m, source)
    if own_rule is not None:
        return own_rule
    by_type = {"region": m.regions, "distributor": m.distributors, "store": m.stores}
    for type_col, id_col in (("scope_type", "scope_id"), ("entity_type", "entity_id")):
        if type_col in columns and id_col in columns:
            parts = [
                f"({type_col} = '{kind}' and {_in(id_col, ids)})" for kind, ids in by_type.items()
            ]
            return " or ".join(parts)
    for column in SCOPE_COLUMNS:
        if column in columns:
            ids = {"store_code": m.stores, "distributor_code": m.distributors}.get(
                column, m.regions
            )
            return _in(column, ids)
    return "false"


# the lists' segments, a view every scope gets over the target lists it may not read
TARGET_LISTS = "ml.marketing_target_lists"
LIST_SEGMENTS = "ml.marketing_list_segments"
SEGMENT_DIMENSIONS = ("region", "city_tier", "scenario", "age_band")
# a segment of fewer listed consumers is pooled (segment null): no cell narrows to a person
MIN_SEGMENT_CONSUMERS = 5
SCENARIO_TAG = "scenario_user:"


def list_segments_sql(source: str, where: str, columns: list[str], tagged: bool) -> str:
    """The SELECT of `LIST_SEGMENTS` over `source`'s target lists, rows filtered by `where`.

    One row per (plan_id, dimension, segment), `dimension` one of `SEGMENT_DIMENSIONS`
    (each dimension partitions the same listed consumers, so each sums to the scope's
    list): consumers listed, targets (coupon) and holdout, expected incremental responses,
    expected cost and expected incremental revenue (yuan) of the target arm, and the most
    frequent reason (reason_zh, reason_en). `segment` is the region, city tier, scenario
    tag (marts.user_tags `scenario_user:*`, when `tagged`) or age band; null for a
    segment of fewer than `MIN_SEGMENT_CONSUMERS` and for an unknown value. `columns` are
    the list's columns: a dimension the list lacks has one null segment.
    """

    def col(name: str) -> str:
        return f"l.{name}" if name in columns else "null"

    scenario = (
        f"(select arg_max(substr(u.tag, {len(SCENARIO_TAG) + 1}), u.score) "
        f"from {source}.marts.user_tags as u where u.entity_type = 'user' "
        f"and u.entity_id = l.consumer_id and u.tag like '{SCENARIO_TAG}%')"
        if tagged
        else "null"
    )
    long = " union all ".join(
        f"select *, '{name}' as dimension, cast({name} as varchar) as segment from listed"
        for name in SEGMENT_DIMENSIONS
    )
    return f"""
        with listed as (
            select l.plan_id, l.consumer_id, l.arm = 'target' as is_target,
                   l.expected_uplift, l.expected_cost, l.expected_incremental_revenue,
                   l.reason_zh, l.reason_en, {col("region_code")} as region,
                   {col("city_tier")} as city_tier, {col("age_band")} as age_band,
                   {scenario} as scenario
            from {source}.{TARGET_LISTS} as l
            where {where}
        ),
        long as ({long}),
        sized as (
            select *, count(*) over (partition by plan_id, dimension, segment) as cell
            from long
        )
        select plan_id, dimension,
               case when cell >= {MIN_SEGMENT_CONSUMERS} then segment end as segment,
               count(*) as consumers,
               count(*) filter (where is_target) as targets,
               count(*) filter (where not is_target) as holdout,
               coalesce(sum(expected_uplift) filter (where is_target), 0)
                   as expected_incremental_responses,
               coalesce(sum(expected_cost) filter (where is_target), 0) as expected_cost,
               coalesce(sum(expected_incremental_revenue) filter (where is_target), 0)
                   as expected_incremental_revenue,
               mode(reason_zh) as reason_zh,
               mode(reason_en) as reason_en
        from sized
        group by all
        -- the merged row of small and unknown segments is shown only when it is not small
        having segment is not null or count(*) >= {MIN_SEGMENT_CONSUMERS}
    """


class ScopedWarehouse:
    """An in-memory database of views over the published file, filtered to one scope."""

    def __init__(self, path: Path, scope: Scope) -> None:
        self.scope = scope
        self.alias = f"_published_{secrets.token_hex(6)}"
        self.con = duckdb.connect(":memory:")
        escaped = str(path).replace("'", "''")
        self.con.execute(f"ATTACH '{escaped}' AS {self.alias} (READ_ONLY)")
        self.members = members(self.con, self.alias, scope)
        # the brand's data window: dates alone reveal nothing, and every scope shares them
        self.window = self.con.execute(
            f"select min(week_start), max(week_start) + 6 "
            f"from {self.alias}.marts.fct_sales_region_sku_week"
        ).fetchone()
        tables = self.con.execute(
            "select table_schema, table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns where table_catalog = ? group by all",
            [self.alias],
        ).fetchall()
        for schema in SCHEMAS:
            self.con.execute(f"create schema if not exists {schema}")
        for schema, table, columns in tables:
            if schema not in SCHEMAS:
                continue
            where = row_filter(f"{schema}.{table}", columns, scope, self.members, self.alias)
            self.con.execute(
                f'create view {schema}."{table}" as '
                f'select * from {self.alias}.{schema}."{table}" where {where}'
            )
        self._list_segments({f"{schema}.{table}": columns for schema, table, columns in tables})
        # the views are built: from here on no file, no new database, no setting change
        for setting in LOCKDOWN:
            self.con.execute(setting)

    def _list_segments(self, columns: dict[str, list[str]]) -> None:
        """`LIST_SEGMENTS` over the target lists, their rows cut to the scope's stores by the
        listed consumer's home store (HQ: every row); no view when there are no lists."""
        listed = columns.get(TARGET_LISTS)
        if not listed or not {"plan_id", "consumer_id", "arm", "store_code"} <= set(listed):
            return
        where = "true" if self.scope.role == "hq" else _in("l.store_code", self.members.stores)
        tagged = {"entity_type", "entity_id", "tag", "score"} <= set(
            columns.get("marts.user_tags", [])
        )
        self.con.execute(
            f"create view {LIST_SEGMENTS} as "
            + list_segments_sql(self.alias, where, listed, tagged)
        )

    def query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """`sql` (one SELECT over the scoped views, `check_select`) with `params`."""
        check_select(sql)
        return self.con.cursor().execute(sql, list(params)).df()


@st.cache_resource(show_spinner=False, max_entries=32)
def _warehouse(
    path: str,
    version: float,  # noqa: ARG001 (cache key: a new publish opens a new connection)
    scope_key: str,  # noqa: ARG001 (cache key: one connection per scope)
    _scope: Scope,
) -> ScopedWarehouse:
    return ScopedWarehouse(Path(path), _scope)


@st.cache_data(show_spinner=False, max_entries=512)
def _query(
    sql: str,
    params: tuple,
    path: str,
    version: float,
    scope_key: str,
    _scope: Scope,
) -> pd.DataFrame:
    # the cache key is the scope's key; the Scope itself only builds the views on a miss
    return _warehouse(path, version, scope_key, _scope).query(sql, params)


def current_scope() -> Scope:
    """The signed-in user's scope; no user, no data. The user is checked against the users
    file as it is now (`auth.signed_in_user`), on every query: a user removed or changed
    since signing in gets nothing, whichever page or script run asks."""
    user = st.session_state.get("user")
    if user is None or signed_in_user(user) is None:
        raise ScopeError("no user is signed in")
    return user.scope


def query(sql: str, params: tuple = ()) -> pd.DataFrame:
    """A read-only query on the published warehouse as the signed-in user may see it.

    Returns an empty frame when nothing is published yet.
    """
    scope = current_scope()
    version = published_version()
    if version is None:
        return pd.DataFrame()
    return _query(sql, params, str(published_path()), version, scope.key, scope)


def data_window() -> tuple[date, date] | None:
    """First and last day of weekly sales in the published warehouse (None: no data)."""
    version = published_version()
    if version is None:
        return None
    scope = current_scope()
    lo, hi = _warehouse(str(published_path()), version, scope.key, scope).window
    return (lo, hi) if lo is not None else None


def has_table(qualified: str) -> bool:
    """Whether the published warehouse has this table (older builds may lack newer ones)."""
    schema, table = qualified.split(".", 1)
    found = query(
        "select count(*) as n from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        (schema, table),
    )
    return not found.empty and int(found.n.iloc[0]) > 0


# -- planner files -----------------------------------------------------------------


@dataclass(frozen=True)
class PlannerFile:
    folder: str  # e.g. "region/华北"
    name: str
    path: Path | None  # None: built on request from the scoped warehouse
    rows: int | None = None


def planner_folders(scope: Scope, exports: Path, m: ScopeMembers) -> list[Path]:
    """The export folders one scope may download from; a store has none (built on request)."""
    if scope.role == "hq":
        folders = [exports / "company"]
        folders += sorted((exports / "region").glob("*"))
        folders += sorted((exports / "distributor").glob("*"))
    elif scope.role == "region":
        folders = [exports / "region" / str(scope.scope_id)]
        folders += [exports / "distributor" / code for code in m.distributors or ()]
    elif scope.role == "distributor":
        folders = [exports / "distributor" / str(scope.scope_id)]
    else:
        folders = []
    return [f for f in folders if f.is_dir()]


def planner_files() -> list[PlannerFile]:
    """Every planner file the signed-in user may download."""
    scope = current_scope()
    version = published_version()
    if version is None:
        return []
    settings = Settings.from_env()
    wh = _warehouse(str(published_path()), version, scope.key, scope)
    files = []
    for folder in planner_folders(scope, settings.exports, wh.members):
        label = folder.relative_to(settings.exports).as_posix()
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files.append(PlannerFile(label, path.name, path))
    if scope.role == "store":
        files.append(PlannerFile(f"store/{scope.scope_id}", "store_orders.csv", None))
    return files


def store_orders_csv() -> bytes:
    """The signed-in store's replenishment suggestions, as the planner files lay them out
    (the same query, through the scoped views), as `safe_csv`."""
    return safe_csv(pl.from_pandas(query(PLANNER_QUERIES["store_orders"])))


# the marketing files' row order, by their own columns
MARKETING_FILE_ORDER = {
    "marketing_plans": "plan_id",
    "target_lists": "plan_id, rank",
    "store_plans": "region, distributor_code, store_code, rank",
}


def marketing_file(name: str, where: str = "true", params: tuple = ()) -> pl.DataFrame:
    """The rows of the marketing planner file `name` (`exports.planner.MARKETING_QUERIES`:
    `target_lists`, `store_plans`, `marketing_plans`) the signed-in user may see, those
    matching `where` (SQL over the file's columns, `?` for `params`), in the file's order,
    dates as dates; empty when the warehouse lacks the table. A scoped reader gets no
    target list rows (consumer-level, HQ only)."""
    frame = query(
        f"select * from ({MARKETING_QUERIES[name]}) where {where} "
        f"order by {MARKETING_FILE_ORDER[name]}",
        params,
    )
    out = pl.from_pandas(frame) if not frame.empty else pl.DataFrame()
    return out.with_columns(
        pl.col(c).cast(pl.Date) for c, dtype in out.schema.items() if dtype == pl.Datetime
    )


# -- market-order case files ---------------------------------------------------------

CASE_SCAN_COLUMNS = (
    "scan_id",
    "scan_time",
    "product_code",
    "case_code",
    "batch_no",
    "consumer_id",
    "scan_city",
    "scan_province",
    "scan_region",
    "lat",
    "lon",
    "km_to_territory",
    "before_activation",
)
# the alert's columns repeated on every scan row of the CSV case file
CASE_ALERT_KEYS = (
    "alert_id",
    "kind",
    "distributor_code",
    "distributor_name",
    "sku_code",
    "sku_name",
    "week_start",
    "status",
    "score",
)
CASE_HEADERS: dict[str, tuple[str, str]] = {
    "field": ("field 字段", ""),
    "value": ("value 值", ""),
    "alert_id": ("alert_id 预警编号", ""),
    "kind": ("kind 类型", ""),
    "distributor_code": ("distributor_code 经销商", ""),
    "distributor_name": ("distributor_name 经销商名称", ""),
    "sku_code": ("sku_code 产品编码", ""),
    "sku_name": ("sku_name 产品名称", ""),
    "week_start": ("week_start 周一", "date"),
    "status": ("status 状态", ""),
    "score": ("score 得分", "0-1"),
    "scan_id": ("scan_id 扫码编号", ""),
    "scan_time": ("scan_time 扫码时间", ""),
    "product_code": ("product_code 产品码", ""),
    "case_code": ("case_code 箱码", ""),
    "batch_no": ("batch_no 批次", ""),
    "consumer_id": ("consumer_id 消费者（假名）", ""),
    "scan_city": ("scan_city 扫码城市", ""),
    "scan_province": ("scan_province 扫码省份", ""),
    "scan_region": ("scan_region 扫码大区", ""),
    "lat": ("lat 纬度", "°"),
    "lon": ("lon 经度", "°"),
    "km_to_territory": ("km_to_territory 距辖区", "km"),
    "before_activation": ("before_activation 激活前扫码", ""),
}


def safe_csv(frame: pl.DataFrame) -> bytes:
    """`frame` as UTF-8 CSV with a BOM (Excel reads the Chinese right), formula-like text
    defused (`core.xlsx.write_csv`)."""
    buffer = io.BytesIO()
    write_csv(frame, buffer)
    return buffer.getvalue()


def safe_xlsx(sheets: dict[str, pl.DataFrame], headers: dict[str, tuple[str, str]]) -> bytes:
    """The bytes of one workbook (sheet name -> table, in order) in the planner workbooks'
    layout (`core.xlsx.write_xlsx`, `headers` naming the columns), formula-like text
    defused in every sheet."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "book.xlsx"
        write_xlsx(sheets, path, headers)
        return path.read_bytes()


@dataclass(frozen=True)
class CaseFile:
    """One alert's verification case file: `alert` its one row (every column of
    `marts.fct_market_order_alerts`), `scans` its evidence scans (`CASE_SCAN_COLUMNS`,
    consumers by pseudonymous id only), oldest first. Both already scoped."""

    alert_id: str
    alert: pl.DataFrame
    scans: pl.DataFrame

    def csv(self) -> bytes:
        """The scans with the alert's key columns (`CASE_ALERT_KEYS`) on every row, UTF-8
        with a BOM for Excel, formula-like text defused. One row per scan; an alert with no
        visible scans gives its one row with empty scan columns."""
        keys = self.alert.select([c for c in CASE_ALERT_KEYS if c in self.alert.columns])
        if self.scans.height:
            frame = keys.join(self.scans, how="cross")
        else:
            frame = pl.concat([keys, self.scans.clear(1)], how="horizontal")
        return safe_csv(frame)

    def xlsx(self) -> bytes:
        """A workbook with sheet "alert" (one field a row: field, value as text) and sheet
        "scans", in the planner workbooks' layout, formula-like text defused."""
        row = self.alert.row(0, named=True) if self.alert.height else {}
        fields = pl.DataFrame(
            {
                "field": list(row),
                "value": ["" if v is None else str(v) for v in row.values()],
            },
            schema={"field": pl.String, "value": pl.String},
        )
        return safe_xlsx({"alert": fields, "scans": self.scans}, CASE_HEADERS)


def case_file(alert_id: str) -> CaseFile | None:
    """The case file of one alert the signed-in user may see (None: not in their scope,
    or no alerts published). A distributor's copy leaves out `destination_distributors`:
    which other distributors share the destination territory is not its business."""
    alert = query("select * from marts.fct_market_order_alerts where alert_id = ?", (alert_id,))
    if alert.empty:
        return None
    if current_scope().role == "distributor":
        alert = alert.drop(columns=["destination_distributors"], errors="ignore")
    scans = query(
        f"select {', '.join(CASE_SCAN_COLUMNS)} from marts.fct_market_order_alert_scans "
        "where alert_id = ? order by scan_time, scan_id",
        (alert_id,),
    )
    return CaseFile(alert_id, pl.from_pandas(alert), pl.from_pandas(scans))


# -- incentive statements ------------------------------------------------------------

STATEMENT_LINE_COLUMNS = (
    "statement_month",
    "payee_type",
    "payee_code",
    "payee_name",
    "distributor_code",
    "region",
    "programme_id",
    "programme_zh",
    "programme_en",
    "period_start",
    "period_end",
    "period_status",
    "pay_due_date",
    "events",
    "events_withheld",
    "events_forfeited",
    "basis",
    "tier_reached",
    "amount_earned",
    "amount_withheld",
    "amount_forfeited",
    "amount_payable",
    "reason_zh",
    "reason_en",
)
STATEMENT_DATES = ("statement_month", "period_start", "period_end", "pay_due_date")
STATEMENT_AMOUNTS = ("amount_earned", "amount_withheld", "amount_forfeited", "amount_payable")
# the payee's columns the totals sheet keeps, before its sums
STATEMENT_PAYEE_KEYS = (
    "statement_month",
    "payee_type",
    "payee_code",
    "payee_name",
    "distributor_code",
    "region",
)
STATEMENT_HEADERS: dict[str, tuple[str, str]] = {
    "statement_month": ("statement_month 结算月", "date"),
    "payee_type": ("payee_type 收款方类型", ""),
    "payee_code": ("payee_code 收款方编码", ""),
    "payee_name": ("payee_name 收款方名称", ""),
    "distributor_code": ("distributor_code 经销商", ""),
    "region": ("region 大区", ""),
    "programme_id": ("programme_id 激励项目", ""),
    "programme_zh": ("programme_zh 项目名称", ""),
    "programme_en": ("programme_en programme", ""),
    "period_start": ("period_start 期间开始", "date"),
    "period_end": ("period_end 期间结束", "date"),
    "period_status": ("period_status 期间状态", ""),
    "pay_due_date": ("pay_due_date 应付日期", "date"),
    "events": ("events 凭证数", ""),
    "events_withheld": ("events_withheld 暂扣凭证", ""),
    "events_forfeited": ("events_forfeited 扣除凭证", ""),
    "basis": ("basis 计奖基数", "CNY"),
    "tier_reached": ("tier_reached 达到档位", ""),
    "lines": ("lines 明细行数", ""),
    "amount_earned": ("amount_earned 应得", "CNY"),
    "amount_withheld": ("amount_withheld 暂扣", "CNY"),
    "amount_forfeited": ("amount_forfeited 扣除", "CNY"),
    "amount_payable": ("amount_payable 应付", "CNY"),
    "reason_zh": ("reason_zh 说明", ""),
    "reason_en": ("reason_en reason", ""),
}


@dataclass(frozen=True)
class StatementFile:
    """Incentive statements (返利结算单) of one statement month as the signed-in user may
    see them: `lines` one row per payee, programme and period (`STATEMENT_LINE_COLUMNS`,
    dates as dates, amounts in yuan), by payee then programme."""

    month: date
    lines: pl.DataFrame

    def totals(self) -> pl.DataFrame:
        """One row per payee: `STATEMENT_PAYEE_KEYS`, lines, and the sums of the amounts."""
        return (
            self.lines.group_by(STATEMENT_PAYEE_KEYS, maintain_order=True)
            .agg(pl.len().alias("lines"), *(pl.col(c).sum().round(2) for c in STATEMENT_AMOUNTS))
            .sort("payee_code")
        )

    def csv(self) -> bytes:
        """The lines, UTF-8 with a BOM for Excel, formula-like text defused."""
        return safe_csv(self.lines)

    def xlsx(self) -> bytes:
        """A workbook with sheet "statements" (`totals`, one row per payee) and sheet
        "lines", bilingual headers with units, formula-like text defused."""
        return safe_xlsx({"statements": self.totals(), "lines": self.lines}, STATEMENT_HEADERS)


def incentive_statement(
    month: date, payee_code: str | None = None, region: str | None = None
) -> StatementFile:
    """The statement lines of `month` (its first day) in the signed-in user's scope, of one
    payee when `payee_code` is given and of one region when `region` is; `lines` is empty
    when there are none (or no table)."""
    where, params = ["statement_month = ?"], [month]
    if payee_code is not None:
        where.append("payee_code = ?")
        params.append(payee_code)
    if region is not None:
        where.append("region = ?")
        params.append(region)
    frame = query(
        f"select {', '.join(STATEMENT_LINE_COLUMNS)} from marts.fct_incentive_statement_lines "
        f"where {' and '.join(where)} order by payee_type, payee_code, programme_id, period_start",
        tuple(params),
    )
    lines = pl.from_pandas(frame) if not frame.empty else pl.DataFrame()
    if lines.is_empty():
        return StatementFile(month, lines)
    return StatementFile(
        month,
        lines.with_columns(
            pl.col(c).cast(pl.Date) for c in STATEMENT_DATES if lines.schema[c] != pl.Date
        ),
    )


# -- the supply plan -----------------------------------------------------------------


def supply_visible() -> bool:
    """Whether the signed-in user's role reads the supply plan (`SUPPLY_ROLES`: HQ and the
    regions); the views give a distributor or a store no rows of it either way."""
    return current_scope().role in SUPPLY_ROLES


def _supply(table: str, sql: str, params: tuple = ()) -> pd.DataFrame:
    """`sql` when the warehouse has `table`, else an empty frame without asking (a
    distributor or a store gets no rows from the views either way)."""
    if not has_table(table):
        return pd.DataFrame()
    return query(sql, params)


def supply_production(category: str | None = None) -> pd.DataFrame:
    """The production plan (`ml.supply_production_plan`, every column, plus `plant_name`
    and `sku_name`), one row per plant x SKU x week, of one category when given; for HQ
    and the regions (production is planned centrally and feeds every DC). The plan is
    built from the plants' capacity weeks, so their names are there."""
    return _supply(
        SUPPLY_PLAN,
        f"select p.*, n.plant_name, d.sku_name from {SUPPLY_PLAN} as p "
        "left join (select plant_code, any_value(plant_name) as plant_name "
        f"from {PLANT_CAPACITY} group by 1) as n using (plant_code) "
        "left join marts.dim_product as d using (sku_code) "
        "where (? is null or p.category = ?) order by plant_code, category, sku_code, week",
        (category, category),
    )


def supply_capacity_history(before: date, weeks: int, category: str | None = None) -> pd.DataFrame:
    """The plants' reported capacity and output (`marts.fct_plant_capacity_weeks`:
    plant_code, category, week_start, capacity_units, output_units) in the `weeks` weeks
    before the Monday `before`, one row per plant x category x week."""
    return _supply(
        PLANT_CAPACITY,
        "select plant_code, category, week_start, capacity_units, output_units "
        f"from {PLANT_CAPACITY} where week_start < ? and week_start >= ? "
        "and (? is null or category = ?) order by plant_code, category, week_start",
        (before, before - timedelta(weeks=weeks), category, category),
    )


def supply_projection(region: str | None = None, category: str | None = None) -> pd.DataFrame:
    """The DC stock projections in scope (`ml.supply_dc_projection`, every column, plus
    `sku_name` and `category`), one row per DC x SKU x week; of one region and category
    when given. A region sees its own DC only."""
    return _supply(
        SUPPLY_PROJECTION,
        f"select p.*, d.sku_name, d.category from {SUPPLY_PROJECTION} as p "
        "left join marts.dim_product as d using (sku_code) "
        "where (? is null or p.region = ?) and (? is null or d.category = ?) "
        "order by p.region, p.warehouse_code, p.sku_code, p.week",
        (region, region, category, category),
    )


def supply_allocation(warehouse_code: str, sku_code: str) -> pd.DataFrame:
    """What the plan sends one DC of one SKU (`ml.supply_dc_allocation`), by week made;
    empty for a DC outside the user's scope."""
    return _supply(
        SUPPLY_ALLOCATION,
        f"select * from {SUPPLY_ALLOCATION} where warehouse_code = ? and sku_code = ? "
        "order by week_start",
        (warehouse_code, sku_code),
    )


def supply_transfers(region: str | None = None, category: str | None = None) -> pd.DataFrame:
    """The proposed transfers and rush runs in scope (`ml.supply_transfers`, every column,
    plus `sku_name` and `category`), most avoided loss first; of one region (into or out
    of its DC) and category when given. A region sees the moves into or out of its DC."""
    return _supply(
        SUPPLY_TRANSFERS,
        "select t.*, d.sku_name, d.category "
        f"from {SUPPLY_TRANSFERS} as t left join marts.dim_product as d using (sku_code) "
        "where (? is null or t.to_region = ? or t.from_region = ?) "
        "and (? is null or d.category = ?) "
        "order by t.avoided_lost_yuan desc, t.sku_code",
        (region, region, region, category, category),
    )


def supply_notes() -> pd.DataFrame:
    """The inputs the plan could not use (`ml.supply_notes`: subject, reason_zh,
    reason_en); HQ's only, empty for everyone else."""
    return _supply(SUPPLY_NOTES, f"select * from {SUPPLY_NOTES} order by subject")
