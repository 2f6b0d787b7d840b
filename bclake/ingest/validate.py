"""Cast raw string columns to contract types and say, per row, what is wrong.

A row is loaded only when every column parses and every required value is
present; otherwise it is quarantined with the first rule it broke. Values are read
by `bclake.core.parsing` (null tokens, dates and times in the contract's zone,
formatted numbers, codes): forgiving where the meaning is certain, and refused with
a reason naming the cause (`ambiguous_date`, `ambiguous_number`,
`percent_not_allowed`, `parens_not_allowed`, `excel_mangled_code`) where it is not.
An event date outside the contract's plausible window (`plausible_from` to
`max_days_ahead` days after the day of ingest) is quarantined as `implausible_date`:
a year 1900 or 2099 is a wrong format, a wrong clock or a test row, never business.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from bclake.core import parsing
from bclake.core.contracts import Column, Contract

TRUE_VALUES = ("true", "1", "yes", "y", "是")
FALSE_VALUES = ("false", "0", "no", "n", "否")


def _text(col: Column, contract: Contract) -> pl.Expr:
    """The column's raw strings, stripped, with the contract's null tokens as nulls."""
    return parsing.clean(pl.col(col.name), contract.tokens(col))


def _integral(value: pl.Expr) -> pl.Expr:
    return pl.when(value == value.round(0)).then(value.cast(pl.Int64, strict=False))


def parse(col: Column, contract: Contract) -> pl.Expr:
    """Expression turning the raw string column into the contract type (null when
    unparseable or refused); the forms each type accepts are those of `bclake.core.parsing`."""
    text = _text(col, contract)
    match col.type:
        case "string":
            return parsing.code(text) if col.pattern else text
        case "int":
            return _integral(
                parsing.parse_number(text, share=col.share, negative_parens=col.negative_parens)
            )
        case "float":
            return parsing.parse_number(text, share=col.share, negative_parens=col.negative_parens)
        case "date":
            return parsing.parse_date(text, contract.timezone, contract.date_order)
        case "timestamp":
            return parsing.parse_timestamp(text, contract.timezone, contract.date_order)
        case "bool":
            low = text.str.to_lowercase()
            return (
                pl.when(low.is_in(TRUE_VALUES)).then(True).when(low.is_in(FALSE_VALUES)).then(False)
            )
    raise ValueError(f"unknown type {col.type}")


Rule = tuple[pl.Expr, pl.Expr]  # (row breaks it, message); messages are built for bad rows only


def _message(template: str, value: pl.Expr) -> pl.Expr:
    """`template` with its `{}` replaced by the offending value (null shown as `null`)."""
    head, tail = template.split("{}", 1)
    return pl.concat_str([pl.lit(head), value.cast(pl.String).fill_null("null"), pl.lit(tail)])


def _refinements(col: Column, text: pl.Expr, value: pl.Expr) -> list[Rule]:
    """Refusals that name their cause, each a case of a generic `bad_type` or `bad_id` of the
    same value (`value` is its typed shadow), so they are evaluated on quarantined rows only,
    ahead of the generic rules."""
    rules = _causes(col, text)
    if not rules:
        return []
    failed = (
        ~value.str.contains(f"^(?:{col.pattern})$").fill_null(True)
        if col.type == "string"
        else value.is_null()
    )
    return [(flag & failed, message) for flag, message in rules]


def _causes(col: Column, text: pl.Expr) -> list[Rule]:
    raw = pl.col(col.name)
    where = f"column '{col.name}' value '{{}}'"
    if col.type in ("date", "timestamp"):
        return [
            (
                parsing.ambiguous_day_month(text),
                _message(
                    f"ambiguous_date: {where} could be day/month or month/day (both are 12 or "
                    "less), so it is not guessed; re-export dates as YYYY-MM-DD",
                    raw,
                ),
            )
        ]
    if col.type in ("int", "float"):
        return [
            (
                parsing.ambiguous_number(text),
                _message(
                    f"ambiguous_number: {where} has a comma that is not a thousands grouping "
                    "(a decimal comma?), so its meaning is not certain; re-export with a point "
                    "as the decimal mark",
                    raw,
                ),
            ),
            (
                parsing.percent_refused(text, col.share),
                _message(
                    f"percent_not_allowed: {where} has a percent sign, but the column is not a "
                    "share (contract `share: true`); re-export it as a plain number",
                    raw,
                ),
            ),
            (
                parsing.parens_refused(text, col.negative_parens),
                _message(
                    f"parens_not_allowed: {where} is in parentheses (an accounting negative?), "
                    "which the contract does not allow for this column (`negative_parens: "
                    "true`); re-export it with a minus sign",
                    raw,
                ),
            ),
        ]
    if col.type == "string" and col.pattern:
        value = parsing.code(text)
        lengths = parsing.code_digit_lengths(col.pattern)
        size = f"{max(lengths)} digits" if lengths else f"`{col.pattern}`"
        return [
            (
                parsing.excel_scientific(value),
                _message(
                    f"excel_mangled_code: {where} is a number in scientific or decimal notation, "
                    f"not a code: {parsing.EXCEL_CAUSE}",
                    raw,
                ),
            ),
            (
                parsing.lost_leading_zeros(value, col.pattern),
                _message(
                    f"excel_mangled_code: {where} is shorter than the code ({size}) and all "
                    f"digits, so its leading zeros were lost: {parsing.EXCEL_CAUSE}",
                    raw,
                ),
            ),
        ]
    return []


def _rules(col: Column, value: pl.Expr, raw_present: pl.Expr) -> list[Rule]:
    """Every contract rule of one column as (flag, message) over its typed shadow `value`
    and `raw_present` (true where the raw value is not null or a null token)."""
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


def _event_date_rule(contract: Contract, shadow: dict[str, str], today: date) -> list[Rule]:
    """The plausible-window rule on the contract's event date (a column, or the timestamp
    a derived event date is taken from); none for a contract without an event date."""
    if contract.event_date is None:
        return []
    columns = {c.name: c for c in contract.all_columns}
    name = contract.event_date
    if name not in columns:
        name = next((d.source for d in contract.derived if d.name == name), name)
    if name not in columns:
        return []
    value = pl.col(shadow[name])
    day = value.dt.date() if columns[name].type == "timestamp" else value
    first, last = contract.plausible_window(today)
    return [
        (
            (day < first) | (day > last),
            _message(
                f"implausible_date: column '{name}' value {{}} is outside the plausible window "
                f"{first}..{last} of {contract.key} (a wrong date format, clock or test row?); "
                "fix the export, or set plausible_from / max_days_ahead in "
                f"contracts/{contract.system}/{contract.table}.yaml if such dates are real",
                value,
            ),
        )
    ]


def _first_try(col: Column, contract: Contract, text: pl.Expr) -> tuple[pl.Expr, pl.Expr | None]:
    """The column's cheap reading of its cleaned `text` (`_text`) and where it falls short (a
    row flag, None when the cheap reading is the full one). Dates and numbers first try the
    common form (ISO, plain), codes skip NFKC when they are ASCII: the full reader (`parse`)
    runs only for a column where some row needs it."""
    if col.type in ("date", "timestamp", "int", "float"):
        if col.type in ("date", "timestamp"):
            first = parsing.fast_date(text, col.type)
        else:
            first = parsing.fast_number(text)
            first = _integral(first) if col.type == "int" else first
        return first, text.is_not_null() & first.is_null()
    if col.type == "string":
        return text, (parsing.non_ascii(text) if col.pattern else None)
    return parse(col, contract), None


def _read_again(
    frame: pl.DataFrame, col: Column, contract: Contract, rows: pl.Series, first: pl.Series
) -> pl.Series:
    """`first` (the cheap reading of `col`) with the flagged `rows` read again by the full
    reader (`parse`): it reads what the cheap one does the same way, so only those rows
    need it."""
    at = rows.arg_true()
    again = frame.select(pl.col(col.name).gather(at)).select(parse(col, contract))
    return first.clone().scatter(at, again.to_series())


def validate(
    frame: pl.DataFrame, contract: Contract, today: date | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into (typed loaded rows, quarantined raw rows with reason and message).

    Each column is parsed once into a typed shadow column (and a presence flag); every rule
    then reads it. One lazy pass reads every column (in parallel) with its cheap reader and
    checks every rule; only the rows where the cheap reader fell short are read again with
    the full one (`parse`), and the rules checked again. `today` (default: the UTC date)
    ends the plausible window of event dates.
    """
    shadow = {col.name: f"__typed_{col.name}" for col in contract.all_columns}
    present = {col.name: f"__present_{col.name}" for col in contract.all_columns}
    rules = [
        r
        for col in contract.all_columns
        for r in _rules(col, pl.col(shadow[col.name]), pl.col(present[col.name]))
    ] + _event_date_rule(contract, shadow, today or datetime.now(UTC).date())
    refinements = [
        r
        for col in contract.all_columns
        for r in _refinements(col, _text(col, contract), pl.col(shadow[col.name]))
    ]
    bad = pl.any_horizontal([flag.fill_null(False) for flag, _ in rules]).alias("_bad")
    # each column cleaned once (`_text`), then read by its cheap reader (`_first_try`)
    text = {col.name: f"__text_{col.name}" for col in contract.all_columns}
    tries = {c.name: _first_try(c, contract, pl.col(text[c.name])) for c in contract.all_columns}
    short = {name: f"__short_{name}" for name, (_, flag) in tries.items() if flag is not None}
    checked = (  # lazy, so rules that share a sub-expression compute it once
        frame.lazy()
        .with_columns(_text(col, contract).alias(text[col.name]) for col in contract.all_columns)
        .with_columns(
            *[first.alias(shadow[name]) for name, (first, _) in tries.items()],
            *[pl.col(text[name]).is_not_null().alias(present[name]) for name in text],
            *[tries[name][1].alias(flag) for name, flag in short.items()],  # type: ignore[union-attr]
        )
        .drop(text.values())
        .with_columns(bad)
        .collect()
    )
    fell_short = (
        checked.select(pl.col(f).any().alias(n) for n, f in short.items()).row(0, named=True)
        if short
        else {}
    )
    redo = [col for col in contract.all_columns if fell_short.get(col.name)]
    if redo:  # the full reader, on the rows where the cheap one fell short
        checked = checked.with_columns(
            _read_again(frame, col, contract, checked[short[col.name]], checked[shadow[col.name]])
            for col in redo
        ).with_columns(bad)
    checked = checked.select(c for c in checked.columns if c not in short.values())
    checked = checked.lazy()
    problem = pl.coalesce([pl.when(flag).then(message) for flag, message in refinements + rules])
    loaded, quarantined = pl.collect_all(
        [
            checked.filter(~pl.col("_bad"))
            .select(
                pl.col("_source_row"),
                *[pl.col(shadow[c.name]).alias(c.name) for c in contract.all_columns],
                pl.col("_extra"),
            )
            .with_columns(
                pl.col(d.source).dt.date().alias(d.name)
                for d in contract.derived
                if d.type == "date"
            ),
            checked.filter(pl.col("_bad"))
            .with_columns(problem.alias("_problem"))
            .select(
                pl.col("_source_row"),
                pl.col("_problem").str.split(":").list.first().alias("reason"),
                pl.col("_problem").alias("message"),
                pl.struct([c.name for c in contract.all_columns]).struct.json_encode().alias("raw"),
            ),
        ]
    )
    return loaded, quarantined
