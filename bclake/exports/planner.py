"""Planner files: forecasts and replenishment suggestions as CSV, Parquet and XLSX; the
precision-marketing files: the next campaigns' target lists (HQ's folder only) and the
store plans (一店一策) of every folder's stores; the supply plan's (HQ and regions); and the
channel plan's: white space, inefficient outlets, new outlets (渠道优化).

Reads only the published warehouse, so files always match what dashboards show.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from bclake.core.pii import redact_frame
from bclake.core.progress import track
from bclake.core.xlsx import Headers, write_csv, write_xlsx

# what each planner file holds: sheet -> query over the published warehouse
QUERIES = {
    "forecast": """
        select f.region, f.sku_code, p.sku_name, p.category, f.week_start, f.horizon,
               round(f.p10, 1) as p10, round(f.p50, 1) as p50, round(f.p90, 1) as p90,
               f.forecast_source
        from ml.forecast_region_sku_week as f
        left join marts.dim_product as p using (sku_code)
        order by f.region, f.sku_code, f.week_start
    """,
    "distributor_forecast": """
        select f.distributor_code, d.region, f.sku_code, p.sku_name, f.week_start,
               round(f.p10, 1) as p10, round(f.p50, 1) as p50, round(f.p90, 1) as p90,
               f.forecast_source
        from ml.forecast_distributor_sku_week as f
        inner join marts.dim_distributor as d using (distributor_code)
        left join marts.dim_product as p using (sku_code)
        order by f.distributor_code, f.sku_code, f.week_start
    """,
    "store_orders": """
        select r.region, r.distributor_code, r.store_code, s.store_name, r.sku_code, p.sku_name,
               r.as_of, r.suggested_qty, r.rule, round(r.forecast_mean, 1) as forecast_mean,
               r.safety_stock, r.order_up_to, r.on_hand, r.on_order, r.lead_days,
               r.order_multiple, r.reason_zh, r.reason_en
        from ml.replenishment_store_sku as r
        left join marts.dim_store as s using (store_code)
        left join marts.dim_product as p using (sku_code)
        order by r.distributor_code, r.store_code, r.sku_code
    """,
    "distributor_orders": """
        select r.region, r.distributor_code, r.sku_code, p.sku_name, r.as_of,
               r.suggested_qty, r.rule, round(r.forecast_mean, 1) as forecast_mean,
               r.safety_stock, r.order_up_to, r.on_hand, r.on_order, r.lead_days,
               r.order_multiple, r.reason_zh, r.reason_en
        from ml.replenishment_distributor_sku as r
        left join marts.dim_product as p using (sku_code)
        order by r.distributor_code, r.sku_code
    """,
}
# the precision-marketing files: sheet -> query; a table the warehouse lacks is left out
MARKETING_QUERIES = {
    "marketing_plans": """
        select plan_id, name_zh, name_en, category, coupon_value, budget_yuan, holdout_share,
               cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to,
               learner, eligible, list_size, targets, holdout,
               round(expected_cost, 2) as expected_cost,
               round(expected_incremental_revenue, 2) as expected_incremental_revenue,
               round(expected_roi, 3) as expected_roi,
               round(expected_roi_random, 3) as expected_roi_random
        from ml.marketing_plans
        order by plan_id
    """,
    "target_lists": """
        select plan_id, rank, consumer_id, arm, offer_category, coupon_value,
               cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to,
               round(expected_uplift, 4) as expected_uplift,
               round(expected_incremental_revenue, 2) as expected_incremental_revenue,
               round(expected_cost, 2) as expected_cost,
               reason_zh, reason_en, region_code as region, distributor_code, store_code,
               city_tier, age_band
        from ml.marketing_target_lists
        order by plan_id, rank
    """,
    "store_plans": """
        select p.region_code as region, p.distributor_code, p.store_code, s.store_name,
               p.channel_type, p.city_tier, cast(p.plan_start as date) as plan_start,
               cast(p.plan_end as date) as plan_end, p.rank, p.activity,
               round(p.expected_incremental_units, 1) as expected_incremental_units,
               round(p.expected_incremental_yuan, 2) as expected_incremental_yuan,
               p.promo_ids, p.trial_sku_code, p.trial_consumer_segment, p.evidence,
               p.reason_zh, p.reason_en
        from marts.fct_store_activity_plans as p
        left join marts.dim_store as s using (store_code)
        order by p.region_code, p.distributor_code, p.store_code, p.rank
    """,
}
# the warehouse tables each marketing file reads (all must exist for it to be written)
MARKETING_SOURCES = {
    "marketing_plans": ("ml.marketing_plans",),
    "target_lists": ("ml.marketing_target_lists",),
    "store_plans": ("marts.fct_store_activity_plans", "marts.dim_store"),
}
# which marketing files each scope gets: consumer-level lists go to HQ's folder only
MARKETING_SHEETS = {
    "company": ("marketing_plans", "target_lists", "store_plans"),
    "region": ("store_plans",),
    "distributor": ("store_plans",),
}
MARKETING_BOOK = "marketing.xlsx"
# which sheets each scope gets: a distributor sees its own rows only, never a region's
SCOPE_SHEETS = {
    "company": ("forecast", "distributor_forecast", "store_orders", "distributor_orders"),
    "region": ("forecast", "distributor_forecast", "store_orders", "distributor_orders"),
    "distributor": ("distributor_forecast", "store_orders", "distributor_orders"),
}
# the supply-plan files (供应链联动): sheet -> query; HQ gets the production plan, a region
# its DC's allocation, projection and transfers; distributors get none
SUPPLY_QUERIES = {
    "production_plan": """
        select plant_code, category, sku_code, week, week_start, planned_units,
               capacity_units, block_planned_units, capacity_shadow_yuan,
               expected_lost_units, binding, reason_zh, reason_en
        from ml.supply_production_plan
        order by plant_code, sku_code, week
    """,
    "dc_allocation": """
        select region, warehouse_code, sku_code, plant_code, week_start, arrival_week_start,
               allocated_units, cover_weeks, short, reason_zh, reason_en
        from ml.supply_dc_allocation
        order by region, sku_code, week_start
    """,
    "dc_projection": """
        select region, warehouse_code, sku_code, week, week_start, opening_units,
               arrivals_units, demand_p10 as p10, demand_p50 as p50, demand_p90 as p90,
               stock_low, stock_p50, stock_high, safety_units, expected_lost_units, status
        from ml.supply_dc_projection
        order by region, sku_code, week
    """,
    "transfers": """
        select kind, sku_code, from_region, from_warehouse, plant_code, to_region,
               to_warehouse, units, cases, distance_km, cost_yuan, avoided_lost_units,
               avoided_lost_yuan, arrive_by, reason_zh, reason_en
        from ml.supply_transfers
        order by avoided_lost_yuan desc
    """,
}
SUPPLY_SOURCES = {
    "production_plan": ("ml.supply_production_plan",),
    "dc_allocation": ("ml.supply_dc_allocation",),
    "dc_projection": ("ml.supply_dc_projection",),
    "transfers": ("ml.supply_transfers",),
}
SUPPLY_SHEETS = {
    "company": ("production_plan", "dc_allocation", "dc_projection", "transfers"),
    "region": ("dc_allocation", "dc_projection", "transfers"),
}
SUPPLY_BOOK = "supply.xlsx"
# the channel-optimisation files (渠道优化): the white-space ranking, the inefficient stores
# and distributors and the plan for N new outlets; a region its region's rows, a
# distributor its territory's (`territory_keep`)
CHANNEL_QUERIES = {
    "white_space": """
        select rank, adcode, city, province, region, tier, stores, consumers,
               resident_consumers, scans, served_units_week, expected_units_week,
               est_untapped_units_week, round(priority, 3) as priority, confidence,
               nearest_distributor_code, km, reason_zh, reason_en
        from ml.channel_white_space
        order by rank
    """,
    "inefficient": """
        select entity_type, code, name, region, distributor_code, province, city, city_tier,
               channel_type, revenue, gross_margin, delivery_cost, visit_cost, rebates,
               promo_cost, contribution, contribution_recent, rule, action, saving,
               move_to_distributor, reason_zh, reason_en
        from ml.channel_inefficient
        order by region, entity_type, saving desc, code
    """,
    "coverage_plan": """
        select outlet, adcode, city, province, region, tier, cell, serving_distributor_code,
               km, expected_incremental_units_week, untapped_left_units_week
        from ml.channel_coverage_plan
        where in_plan
        order by outlet
    """,
}
CHANNEL_SOURCES = {
    "white_space": ("ml.channel_white_space",),
    "inefficient": ("ml.channel_inefficient",),
    "coverage_plan": ("ml.channel_coverage_plan",),
}
CHANNEL_SHEETS = {
    "company": ("white_space", "inefficient", "coverage_plan"),
    "region": ("white_space", "inefficient", "coverage_plan"),
    "distributor": ("white_space", "inefficient", "coverage_plan"),
}
CHANNEL_BOOK = "channel.xlsx"
# the columns naming the distributor that would serve an area (white space, plan)
SERVING_COLUMNS = ("nearest_distributor_code", "serving_distributor_code")
# what a distributor reads in place of another distributor's code (its business, not
# theirs): in a code column, and in each language's reason
OTHER_DISTRIBUTOR = "其他经销商 another distributor"
OTHER_IN_REASON = {"reason_zh": "其他经销商", "reason_en": "another distributor"}
# a region's rows: those of its own region, and a transfer into or out of it
REGION_COLUMNS = ("region", "to_region", "from_region")


@dataclass(frozen=True)
class Book:
    """A set of planner files beside `plan.xlsx`, written where the warehouse has them:
    sheet -> query, the tables each query reads, which sheets each scope gets (a scope
    without an entry gets none), and the workbook's file name."""

    queries: dict[str, str]
    sources: dict[str, tuple[str, ...]]
    sheets: dict[str, tuple[str, ...]]
    name: str


MARKETING = Book(MARKETING_QUERIES, MARKETING_SOURCES, MARKETING_SHEETS, MARKETING_BOOK)
SUPPLY = Book(SUPPLY_QUERIES, SUPPLY_SOURCES, SUPPLY_SHEETS, SUPPLY_BOOK)
CHANNEL = Book(CHANNEL_QUERIES, CHANNEL_SOURCES, CHANNEL_SHEETS, CHANNEL_BOOK)
# column -> (header shown in the spreadsheet, unit): `bclake.core.xlsx.Headers`
HEADERS: Headers = {
    "region": ("region 区域", ""),
    "distributor_code": ("distributor_code 经销商", ""),
    "store_code": ("store_code 门店", ""),
    "store_name": ("store_name 门店名称", ""),
    "sku_code": ("sku_code 产品编码", ""),
    "sku_name": ("sku_name 产品名称", ""),
    "category": ("category 品类", ""),
    "week_start": ("week_start 周一", "date"),
    "horizon": ("horizon 提前周数", "weeks"),
    "p10": ("p10 低", "units"),
    "p50": ("p50 中位", "units"),
    "p90": ("p90 高", "units"),
    "forecast_source": ("forecast_source 预测来源", ""),
    "as_of": ("as_of 建议日期", "date"),
    "suggested_qty": ("suggested_qty 建议补货", "units"),
    "rule": ("rule 规则", ""),
    "forecast_mean": ("forecast_mean 保护期需求", "units"),
    "safety_stock": ("safety_stock 安全库存", "units"),
    "order_up_to": ("order_up_to 目标库存", "units"),
    "on_hand": ("on_hand 现有库存", "units"),
    "on_order": ("on_order 在途", "units"),
    "lead_days": ("lead_days 到货天数", "days"),
    "order_multiple": ("order_multiple 包装倍数", "units"),
    "reason_zh": ("reason_zh 原因", ""),
    "reason_en": ("reason_en reason", ""),
    # precision marketing
    "plan_id": ("plan_id 营销计划", ""),
    "name_zh": ("name_zh 计划名称", ""),
    "name_en": ("name_en plan", ""),
    "coupon_value": ("coupon_value 券面额", "CNY"),
    "budget_yuan": ("budget_yuan 预算", "CNY"),
    "holdout_share": ("holdout_share 对照组比例", "0-1"),
    "valid_from": ("valid_from 券生效", "date"),
    "valid_to": ("valid_to 券失效", "date"),
    "learner": ("learner 增量模型", ""),
    "eligible": ("eligible 可营销人数", "consumers"),
    "list_size": ("list_size 名单人数", "consumers"),
    "targets": ("targets 发券人数", "consumers"),
    "holdout": ("holdout 对照组人数", "consumers"),
    "expected_cost": ("expected_cost 预期券成本", "CNY"),
    "expected_incremental_revenue": ("expected_incremental_revenue 预期增量销售额", "CNY"),
    "expected_roi": ("expected_roi 预期ROI", "CNY/CNY"),
    "expected_roi_random": ("expected_roi_random 随机发券ROI", "CNY/CNY"),
    "rank": ("rank 排名", ""),
    "consumer_id": ("consumer_id 消费者（假名）", ""),
    "arm": ("arm 组别 target/holdout", ""),
    "offer_category": ("offer_category 券品类", ""),
    "expected_uplift": ("expected_uplift 预期增量购买概率", "0-1"),
    "city_tier": ("city_tier 城市等级", ""),
    "age_band": ("age_band 年龄段", ""),
    "channel_type": ("channel_type 渠道", ""),
    "plan_start": ("plan_start 计划开始", "date"),
    "plan_end": ("plan_end 计划结束", "date"),
    "activity": ("activity 活动", ""),
    "expected_incremental_units": ("expected_incremental_units 预期增量件数", "units"),
    "expected_incremental_yuan": ("expected_incremental_yuan 预期增量金额", "CNY"),
    "promo_ids": ("promo_ids 可报名促销", ""),
    "trial_sku_code": ("trial_sku_code 试销新品", ""),
    "trial_consumer_segment": ("trial_consumer_segment 试销人群", ""),
    "evidence": ("evidence 依据", ""),
    # supply plan
    "plant_code": ("plant_code 工厂", ""),
    "week": ("week 计划周", "1-13"),
    "planned_units": ("planned_units 计划产量", "units"),
    "capacity_units": ("capacity_units 周产能", "units"),
    "block_planned_units": ("block_planned_units 同品类计划合计", "units"),
    "capacity_shadow_yuan": ("capacity_shadow_yuan 产能影子价格", "CNY/unit"),
    "expected_lost_units": ("expected_lost_units 预计缺货", "units"),
    "binding": ("binding 约束", ""),
    "warehouse_code": ("warehouse_code 区域仓", ""),
    "arrival_week_start": ("arrival_week_start 到仓周", "date"),
    "allocated_units": ("allocated_units 分配量", "units"),
    "cover_weeks": ("cover_weeks 覆盖周数", "weeks"),
    "short": ("short 供应不足", ""),
    "opening_units": ("opening_units 期初库存", "units"),
    "arrivals_units": ("arrivals_units 到货", "units"),
    "stock_low": ("stock_low 库存(高需求)", "units"),
    "stock_p50": ("stock_p50 库存(中位)", "units"),
    "stock_high": ("stock_high 库存(低需求)", "units"),
    "safety_units": ("safety_units 安全库存", "units"),
    "status": ("status 状态", ""),
    "kind": ("kind 类型 transfer/rush_run", ""),
    "from_warehouse": ("from_warehouse 调出仓", ""),
    "from_region": ("from_region 调出区域", ""),
    "to_region": ("to_region 调入区域", ""),
    "to_warehouse": ("to_warehouse 调入仓", ""),
    "units": ("units 数量", "units"),
    "cases": ("cases 箱数", "cases"),
    "distance_km": ("distance_km 距离", "km"),
    "cost_yuan": ("cost_yuan 成本", "CNY"),
    "avoided_lost_units": ("avoided_lost_units 避免缺货", "units"),
    "avoided_lost_yuan": ("avoided_lost_yuan 避免损失", "CNY"),
    "arrive_by": ("arrive_by 预计到达", "date"),
    # channel optimisation
    "adcode": ("adcode 城市代码", ""),
    "city": ("city 城市", ""),
    "province": ("province 省份", ""),
    "tier": ("tier 城市等级", "1-4"),
    "stores": ("stores 门店数", "stores"),
    "consumers": ("consumers 会员数", "consumers"),
    "resident_consumers": ("resident_consumers 超出门店覆盖的常住会员", "consumers"),
    "scans": ("scans 本地扫码", "scans"),
    "served_units_week": ("served_units_week 现有门店进货", "units/week"),
    "expected_units_week": ("expected_units_week 预计需求", "units/week"),
    "est_untapped_units_week": ("est_untapped_units_week 估计未覆盖需求", "units/week"),
    "priority": ("priority 优先级", ""),
    "confidence": ("confidence 置信度", "0-1"),
    "nearest_distributor_code": ("nearest_distributor_code 最近经销商", ""),
    "km": ("km 距离", "km"),
    "entity_type": ("entity_type 类型 store/distributor", ""),
    "code": ("code 编码", ""),
    "name": ("name 名称", ""),
    "revenue": ("revenue 进货额", "CNY"),
    "gross_margin": ("gross_margin 毛利", "CNY"),
    "delivery_cost": ("delivery_cost 配送成本", "CNY"),
    "visit_cost": ("visit_cost 拜访成本", "CNY"),
    "rebates": ("rebates 返利", "CNY"),
    "promo_cost": ("promo_cost 促销成本", "CNY"),
    "contribution": ("contribution 贡献", "CNY"),
    "contribution_recent": ("contribution_recent 近半窗口贡献", "CNY"),
    "action": ("action 建议措施", ""),
    "saving": ("saving 可节省", "CNY"),
    "move_to_distributor": ("move_to_distributor 改由经销商", ""),
    "outlet": ("outlet 网点序号", ""),
    "cell": ("cell H3 网格", ""),
    "serving_distributor_code": ("serving_distributor_code 配送经销商", ""),
    "expected_incremental_units_week": ("expected_incremental_units_week 预计增量", "units/week"),
    "untapped_left_units_week": ("untapped_left_units_week 剩余未覆盖", "units/week"),
}


def _write_table(frame: pl.DataFrame, folder: Path, name: str) -> None:
    """`frame` as CSV (`core.xlsx.write_csv`: UTF-8 with BOM, which Excel needs, formula-like
    text defused) and as Parquet (as is), each replaced atomically."""
    for suffix, write in (
        (".csv", lambda p: write_csv(frame, p)),
        (".parquet", frame.write_parquet),
    ):
        path = folder / f"{name}{suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        write(tmp)
        os.replace(tmp, path)


def _write_book(sheets: dict[str, pl.DataFrame], folder: Path, book: str) -> int:
    """CSV and Parquet per table of `sheets` in `folder` and the workbook `book` with each as
    a sheet; the CSV and the workbook with formula-like text defused (`core.xlsx` writers),
    the Parquet as is; in all of them, a phone or identity number that reached the warehouse
    masked (`core.pii.redact_frame`, the last line). Returns rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    sheets = {name: redact_frame(frame, None) for name, frame in sheets.items()}
    for name, frame in sheets.items():
        _write_table(frame, folder, name)
    write_xlsx(sheets, folder / book, HEADERS)
    return sum(f.height for f in sheets.values())


def _write_scope(tables: dict[str, pl.DataFrame], folder: Path, scope: str) -> int:
    return _write_book({name: tables[name] for name in SCOPE_SHEETS[scope]}, folder, "plan.xlsx")


def _write_optional(
    book: Book,
    tables: dict[str, pl.DataFrame],
    folder: Path,
    scope: str,
    keep: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> int:
    """The scope's files of `book` in `folder`, each table cut by `keep` (None: whole):
    CSV and Parquet per table and the workbook with each as a sheet, the CSV and the
    workbook with formula-like text defused. A table the warehouse lacks (an older build)
    is not written and a stale file of it is removed."""
    wanted = book.sheets.get(scope, ())
    sheets = {
        name: tables[name] if keep is None else keep(tables[name])
        for name in wanted
        if name in tables
    }
    for name in wanted:
        if name not in sheets:
            for suffix in (".csv", ".parquet"):
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
    if not sheets:
        (folder / book.name).unlink(missing_ok=True)
        return 0
    return _write_book(sheets, folder, book.name)


def _optional_tables(con: duckdb.DuckDBPyConnection, book: Book) -> dict[str, pl.DataFrame]:
    """The tables of `book` whose sources the warehouse has."""
    present = {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    return {
        name: con.sql(query).pl()
        for name, query in book.queries.items()
        if set(book.sources[name]) <= present
    }


def _of_region(region: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A frame's rows of `region`: in any of its `REGION_COLUMNS`."""

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        columns = [c for c in REGION_COLUMNS if c in frame.columns]
        return frame.filter(pl.any_horizontal([pl.col(c) == region for c in columns]))

    return keep


def territory_keep(
    code: str, region: str | None, cities: set[tuple[str, str]]
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A distributor's rows of a channel table: its own and its stores' (`distributor_code`)
    and its territory's areas: those of its `region` it would serve (`SERVING_COLUMNS`) or
    in `cities`, the (province, city) pairs of its stores; other distributors unnamed
    (`mask_other_distributors`). The dashboards cut and mask the same way
    (`dashboards.data.channel_filter`, the page)."""

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        if "distributor_code" in frame.columns:
            return mask_other_distributors(frame.filter(pl.col("distributor_code") == code), code)
        own = [pl.col(c) == code for c in SERVING_COLUMNS if c in frame.columns]
        if {"province", "city"} <= set(frame.columns):
            pairs = pl.concat_str("province", "city", separator="|")
            own.append(pairs.is_in([f"{p}|{c}" for p, c in cities]))
        if not own or region is None or "region" not in frame.columns:
            return frame.clear()
        kept = frame.filter(pl.any_horizontal(own) & (pl.col("region") == region))
        return mask_other_distributors(kept, code)

    return keep


def _territories(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, set[tuple[str, str]]], dict[str, str]]:
    """(distributor -> the (province, city) pairs of its stores, distributor -> its region)
    from the dimensions; empty where the warehouse lacks those columns."""
    columns = {
        f"{t}.{c}"
        for t, c in con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name in ('dim_store', 'dim_distributor')"
        ).fetchall()
    }
    cities: dict[str, set[tuple[str, str]]] = {}
    if {"dim_store.distributor_code", "dim_store.province", "dim_store.city"} <= columns:
        for code, province, city in con.execute(
            "select distinct distributor_code, province, city from marts.dim_store"
        ).fetchall():
            cities.setdefault(code, set()).add((province, city))
    regions: dict[str, str] = {}
    if {"dim_distributor.distributor_code", "dim_distributor.region"} <= columns:
        regions = dict(
            con.execute("select distributor_code, region from marts.dim_distributor").fetchall()
        )
    return cities, regions


def mask_other_distributors(frame: pl.DataFrame, code: str) -> pl.DataFrame:
    """`frame` (a channel table) as distributor `code` reads it: another distributor named
    as an area's nearest or serving distributor, or as the one a store should move to
    (also in the reasons, where `move_to_distributor` is quoted), becomes
    `OTHER_DISTRIBUTOR`."""
    named = [c for c in (*SERVING_COLUMNS, "move_to_distributor") if c in frame.columns]
    if "move_to_distributor" in frame.columns:  # a few hundred rows: plain Python
        moves = frame["move_to_distributor"].to_list()
        frame = frame.with_columns(
            pl.Series(
                r,
                [
                    text.replace(move, OTHER_IN_REASON[r])
                    if text is not None and move is not None and move != code
                    else text
                    for text, move in zip(frame[r].to_list(), moves, strict=True)
                ],
                dtype=pl.String,
            )
            for r in OTHER_IN_REASON
            if r in frame.columns
        )
    return frame.with_columns(
        pl.when(pl.col(c).is_not_null() & (pl.col(c) != code))
        .then(pl.lit(OTHER_DISTRIBUTOR))
        .otherwise(pl.col(c))
        .alias(c)
        for c in named
    )


def write_planner_files(published_db: Path, exports_dir: Path) -> dict[str, int]:
    """Planner files for the whole company and for every region and distributor.

    Layout: `company/`, `region/<region>/`, `distributor/<code>/` (every region and
    distributor of `marts.dim_distributor` and of the suggestions), each with one CSV and
    one Parquet per table and `plan.xlsx` holding every table as a sheet, and beside them
    the marketing files (`MARKETING_SHEETS`: the target lists in `company/` only, store
    plans everywhere) with `marketing.xlsx`, and the supply-plan files (`SUPPLY_SHEETS`:
    the production plan in `company/`, each region its DC's allocation, projection and
    the transfers into or out of it) with `supply.xlsx`, and the channel files
    (`CHANNEL_SHEETS`: white-space ranking, inefficient stores and distributors, the plan
    for N new outlets; a distributor its territory's, other distributors unnamed:
    `territory_keep`) with
    `channel.xlsx`. A region or distributor folder holds only its own rows. Returns rows
    written per folder.
    """
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        tables = {name: con.sql(q).pl() for name, q in QUERIES.items()}
        marketing = _optional_tables(con, MARKETING)
        supply = _optional_tables(con, SUPPLY)
        channel = _optional_tables(con, CHANNEL)
        store_cities, home_region = _territories(con)
    finally:
        con.close()
    # every distributor of the master gets its folder, with or without suggested orders
    orders = tables["distributor_orders"]
    regions = sorted(
        {r for r in (*orders["region"].to_list(), *home_region.values()) if r is not None}
    )
    codes = sorted({*orders["distributor_code"].to_list(), *home_region})
    with track("planner files", total=1 + len(regions) + len(codes), unit="folders") as task:
        company = exports_dir / "company"
        written = {
            "company": _write_scope(tables, company, "company")
            + _write_optional(MARKETING, marketing, company, "company")
            + _write_optional(SUPPLY, supply, company, "company")
            + _write_optional(CHANNEL, channel, company, "company")
        }
        task.advance(note=f"company: {written['company']:,} rows")
        for region in regions:
            scoped = {n: t.filter(pl.col("region") == region) for n, t in tables.items()}
            folder = exports_dir / "region" / region
            name = f"region/{region}"
            here = _of_region(region)
            written[name] = (
                _write_scope(scoped, folder, "region")
                + _write_optional(MARKETING, marketing, folder, "region", here)
                + _write_optional(SUPPLY, supply, folder, "region", here)
                + _write_optional(CHANNEL, channel, folder, "region", here)
            )
            task.advance(note=f"{name}: {written[name]:,} rows")
        for code in codes:
            scoped = {
                n: t.filter(pl.col("distributor_code") == code)
                for n, t in tables.items()
                if "distributor_code" in t.columns
            }
            folder = exports_dir / "distributor" / code
            name = f"distributor/{code}"
            written[name] = (
                _write_scope(scoped, folder, "distributor")
                + _write_optional(
                    MARKETING,
                    marketing,
                    folder,
                    "distributor",
                    lambda frame, code=code: frame.filter(pl.col("distributor_code") == code),
                )
                + _write_optional(
                    CHANNEL,
                    channel,
                    folder,
                    "distributor",
                    territory_keep(code, home_region.get(code), store_cities.get(code, set())),
                )
            )
            task.advance(note=f"{name}: {written[name]:,} rows")
    return written
