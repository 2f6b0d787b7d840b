"""Cast raw string columns to contract types and say, per row, what is wrong.

A row is loaded only when every column parses and every required value is
present; otherwise it is quarantined with the first rule it broke.
"""

from __future__ import annotations

import polars as pl

from bclake.core.contracts import Column, Contract

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


Rule = tuple[pl.Expr, pl.Expr]  # (row breaks it, message); messages are built for bad rows only


def _message(template: str, value: pl.Expr) -> pl.Expr:
    """`template` with its `{}` replaced by the offending value (null shown as `null`)."""
    head, tail = template.split("{}", 1)
    return pl.concat_str([pl.lit(head), value.cast(pl.String).fill_null("null"), pl.lit(tail)])


def _rules(col: Column, value: pl.Expr) -> list[Rule]:
    """Every contract rule of one column as (flag, message) over its typed shadow `value`."""
    raw_present = pl.col(col.name).str.strip_chars().fill_null("") != ""
    rules: list[Rule] = [
        (
            raw_present & value.is_null(),
            _message(
                f"bad_type: column '{col.name}' value '{{}}' is not a valid {col.type}",
                pl.col(col.name),
            ),
        )
    ]
    if col.pattern:
        rules.append(
            (
                value.is_not_null() & ~value.str.contains(f"^(?:{col.pattern})$"),
                _message(
                    f"bad_id: column '{col.name}' value '{{}}' does not match {col.pattern}", value
                ),
            )
        )
    if col.allowed is not None:
        allowed = ", ".join(col.allowed)
        rules.append(
            (
                value.is_not_null() & ~value.cast(pl.String).is_in(col.allowed),
                _message(
                    f"not_allowed: column '{col.name}' value '{{}}' is not one of {allowed}", value
                ),
            )
        )
    if col.min is not None:
        rules.append(
            (
                value < col.min,
                _message(f"out_of_range: column '{col.name}' value {{}} is below {col.min}", value),
            )
        )
    if col.max is not None:
        rules.append(
            (
                value > col.max,
                _message(f"out_of_range: column '{col.name}' value {{}} is above {col.max}", value),
            )
        )
    if not col.nullable:
        rules.append((~raw_present, pl.lit(f"missing_value: column '{col.name}' is required")))
    return rules


def _typed(frame: pl.DataFrame, col: Column) -> pl.Series:
    """The column cast to its contract type; dates try the usual format before the others."""
    if col.type in ("date", "timestamp"):
        raw = pl.col(col.name).str.strip_chars()
        first = (
            raw.str.to_date(DATE_FORMATS[0], strict=False)
            if col.type == "date"
            else raw.str.to_datetime(TIMESTAMP_FORMATS[0], strict=False, time_unit="us")
        )
        quick = frame.select(first.alias("v"), (raw.fill_null("") != "").alias("present"))
        if not (quick["present"] & quick["v"].is_null()).any():
            return quick["v"].alias(col.name)
    return frame.select(parse(col).alias(col.name)).to_series()


def validate(frame: pl.DataFrame, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into (typed loaded rows, quarantined raw rows with reason and message).

    Each column is parsed once into a typed shadow column; every rule then reads it.
    """
    shadow = {col.name: f"__typed_{col.name}" for col in contract.all_columns}
    frame = frame.with_columns(
        _typed(frame, col).alias(shadow[col.name]) for col in contract.all_columns
    )
    rules = [r for col in contract.all_columns for r in _rules(col, pl.col(shadow[col.name]))]
    checked = (  # lazy, so rules that share a sub-expression compute it once
        frame.lazy()
        .with_columns(pl.any_horizontal([flag.fill_null(False) for flag, _ in rules]).alias("_bad"))
        .collect()
    )
    good = checked.filter(~pl.col("_bad"))
    bad = checked.filter(pl.col("_bad")).with_columns(
        pl.coalesce([pl.when(flag).then(message) for flag, message in rules]).alias("_problem")
    )
    loaded = good.select(
        pl.col("_source_row"),
        *[pl.col(shadow[c.name]).alias(c.name) for c in contract.all_columns],
        pl.col("_extra"),
    )
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
