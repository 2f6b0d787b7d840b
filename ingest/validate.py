"""Cast raw string columns to contract types and say, per row, what is wrong.

A row is loaded only when every column parses and every required value is
present; otherwise it is quarantined with the first rule it broke.
"""

from __future__ import annotations

import polars as pl

from bclake.contracts import Column, Contract

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d/%m/%Y")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S")
TRUE_VALUES = ("true", "1", "yes", "y", "是")
FALSE_VALUES = ("false", "0", "no", "n", "否")


def parse(col: Column) -> pl.Expr:
    """Expression turning the raw string column into the contract type (null when unparseable)."""
    raw = pl.col(col.name).str.strip_chars()
    raw = pl.when(raw == "").then(None).otherwise(raw)
    match col.type:
        case "string":
            return raw
        case "int":
            return raw.cast(pl.Float64, strict=False).pipe(
                lambda f: pl.when(f == f.round(0)).then(f.cast(pl.Int64, strict=False))
            )
        case "float":
            return raw.cast(pl.Float64, strict=False)
        case "date":
            return pl.coalesce([raw.str.to_date(f, strict=False) for f in DATE_FORMATS])
        case "timestamp":
            return pl.coalesce(
                [raw.str.to_datetime(f, strict=False, time_unit="us") for f in TIMESTAMP_FORMATS]
            )
        case "bool":
            low = raw.str.to_lowercase()
            return (
                pl.when(low.is_in(TRUE_VALUES)).then(True).when(low.is_in(FALSE_VALUES)).then(False)
            )
    raise ValueError(f"unknown type {col.type}")


def _rule_checks(col: Column, value: pl.Expr) -> list[pl.Expr]:
    """Contract rules beyond the type: pattern, allowed values, range."""
    checks = []
    if col.pattern:
        checks.append(
            pl.when(value.is_not_null() & ~value.str.contains(f"^(?:{col.pattern})$")).then(
                pl.format(
                    "bad_id: column '{}' value '{}' does not match {}",
                    pl.lit(col.name),
                    value,
                    pl.lit(col.pattern),
                )
            )
        )
    if col.allowed is not None:
        checks.append(
            pl.when(value.is_not_null() & ~value.cast(pl.String).is_in(col.allowed)).then(
                pl.format(
                    "not_allowed: column '{}' value '{}' is not one of {}",
                    pl.lit(col.name),
                    value.cast(pl.String),
                    pl.lit(", ".join(col.allowed)),
                )
            )
        )
    if col.min is not None:
        checks.append(
            pl.when(value < col.min).then(
                pl.format(
                    "out_of_range: column '{}' value {} is below {}",
                    pl.lit(col.name),
                    value,
                    pl.lit(col.min),
                )
            )
        )
    if col.max is not None:
        checks.append(
            pl.when(value > col.max).then(
                pl.format(
                    "out_of_range: column '{}' value {} is above {}",
                    pl.lit(col.name),
                    value,
                    pl.lit(col.max),
                )
            )
        )
    return checks


def validate(frame: pl.DataFrame, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into (typed loaded rows, quarantined raw rows with reason and message)."""
    typed_cols, problems = [], []
    for col in contract.all_columns:
        value = parse(col)
        raw_present = pl.col(col.name).str.strip_chars().fill_null("") != ""
        typed_cols.append(value.alias(col.name))
        problems.append(
            pl.when(raw_present & value.is_null()).then(
                pl.format(
                    "bad_type: column '{}' value '{}' is not a valid {}",
                    pl.lit(col.name),
                    pl.col(col.name),
                    pl.lit(col.type),
                )
            )
        )
        problems.extend(_rule_checks(col, value))
        if not col.nullable:
            problems.append(
                pl.when(~raw_present).then(
                    pl.lit(f"missing_value: column '{col.name}' is required")
                )
            )
    checked = frame.with_columns(pl.coalesce(problems).alias("_problem"))
    good = checked.filter(pl.col("_problem").is_null())
    bad = checked.filter(pl.col("_problem").is_not_null())
    loaded = good.select(pl.col("_source_row"), *typed_cols, pl.col("_extra"))
    for d in contract.derived:
        if d.type == "date":
            loaded = loaded.with_columns(pl.col(d.source).dt.date().alias(d.name))
    quarantined = bad.select(
        pl.col("_source_row"),
        pl.col("_problem").str.split(":").list.first().alias("reason"),
        pl.col("_problem").alias("message"),
        pl.struct([c.name for c in contract.all_columns]).struct.json_encode().alias("raw"),
    )
    return loaded, quarantined
