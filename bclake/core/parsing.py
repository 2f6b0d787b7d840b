"""Reading values from real exports: null tokens, dates and times, numbers, codes.

Every reader here is a polars expression over a whole string column (no Python per
row), shared by ingest (which validates landing files against contracts) and the
forecast CLI (which reads a user's sales table). The rule throughout: read a value
when its meaning is certain, and refuse it, with a reason that says why, when it is
not. Nothing is guessed.

Each reader comes with its refusal tests (boolean expressions, true where a value is
refused for a *specific* reason) so that a caller can quarantine with a message that
names the cause instead of a bare "not a valid date".

Inputs are the raw strings; `clean(...)` first strips them and turns null tokens into
nulls, and the readers expect its output.
"""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl


def _named(result: pl.Expr, text: pl.Expr) -> pl.Expr:
    """`result` under the output name of `text` (when it has one), as a cast would be."""
    name = text.meta.output_name(raise_if_undetermined=False)
    return result if name is None else result.alias(name)


# --- nulls -----------------------------------------------------------------------------

NULL_TOKENS: tuple[str, ...] = (
    "NULL",
    "null",
    "Null",
    r"\N",  # MySQL / Hive `SELECT ... INTO OUTFILE`
    "-",
    "--",
    "N/A",
    "n/a",
    "NA",
    "#N/A",  # Excel's lookup miss
    "None",
    "none",
    "nil",
    "NaN",
    "nan",
    "(null)",
)
"""Values read as null in every column (after stripping surrounding whitespace; the empty
string and whitespace-only values are null too). A contract, or one of its columns, replaces
the list with `null_tokens:` where one of these could be a real value (e.g. `NA` as a region
code)."""


def clean(raw: pl.Expr, tokens: tuple[str, ...] = NULL_TOKENS) -> pl.Expr:
    """The raw string stripped of surrounding whitespace (NBSP and full-width space
    included), null where it is empty or one of `tokens`. String in, string out."""
    text = raw.str.strip_chars(" \t\r\n\u00a0\u3000\ufeff")
    return _named(pl.when((text == "") | text.is_in(list(tokens))).then(None).otherwise(text), raw)


def non_ascii(text: pl.Expr) -> pl.Expr:
    """True where the text holds a character outside ASCII (its UTF-8 bytes outnumber its
    characters): several times cheaper than a regular expression over the same column."""
    return text.str.len_bytes() != text.str.len_chars()


def nfkc(text: pl.Expr) -> pl.Expr:
    """Unicode NFKC: full-width digits, letters and signs (`１２３`, `，`, `．`, `－`, `￥`)
    become their ASCII forms. Applied to numbers, dates and codes, never to free text."""
    return text.str.normalize("NFKC")


# --- dates and times -------------------------------------------------------------------

DEFAULT_ZONE = "Asia/Shanghai"
EXCEL_SERIAL_RANGE = (20000, 80000)  # 1954-10-03 .. 2119-01-10: a plausible business date
_EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (its 1900 leap-year bug folded in)

_TIME = r"(?:(?:T|\s+)(\d{1,2})(?:[:时](\d{2})(?:[:分](\d{2})(\.\d{1,9})?秒?)?)?)?"
_OFFSET = r"\s*(Z|[+-]\d{2}:?\d{2})?"
# year first: 2024-03-01, 2024/3/1, 2024.3.1, 2024年3月1日, each with an optional time
_YMD = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?" + _TIME + _OFFSET + "$"
)
# compact: 20240301, 20240301103000
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2}))?$")
# day and month first in either order: 01/03/2024, 3/25/2024, 25.03.2024
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})" + _TIME + "$")
DATE_ORDERS = ("dmy", "mdy")  # a source's stated order of day-and-month-first dates
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")

DATE_FORMS = (
    "`2024-03-01`, `2024/3/1`, `2024.3.1`, `2024年3月1日`, `20240301`, each optionally with a "
    "time (`10:30`, `10:30:15`, `10:30:15.250`, `T` or space between) and an "
    "offset (`Z`, `+08:00`, `+0800`); day and month first (`25/03/2024`, `03/25/2024`) only "
    "where one of the two is above 12 or both are equal; an Excel serial day (5 digits, "
    f"{EXCEL_SERIAL_RANGE[0]}..{EXCEL_SERIAL_RANGE[1]}, a fraction for the time of day)"
)


def _day_month(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(first, second, matched) of a day/month-first value, as integers."""
    g = text.str.extract_groups(_DMY.pattern)
    a = g.struct.field("1").cast(pl.Int32, strict=False)
    b = g.struct.field("2").cast(pl.Int32, strict=False)
    return a, b, a.is_not_null()


def ambiguous_day_month(text: pl.Expr, order: str | None = None) -> pl.Expr:
    """True where a value is day and month first and both are 12 or less but differ
    (`03/04/2024`: 3 April or 4 March): such a value is refused, never guessed, unless the
    source names its `order` (`dmy` or `mdy`), when nothing is ambiguous."""
    if order is not None:
        return _named(pl.lit(False), text)
    a, b, matched = _day_month(text)
    return _named(matched & (a <= 12) & (b <= 12) & (a != b), text)


def _canonical(text: pl.Expr, order: str | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(`YYYY-MM-DD HH:MM:SS.f` string, offset `+HHMM` or null) from any accepted written form;
    null where none matches or where day and month order is ambiguous."""
    t = nfkc(text)
    ymd = t.str.extract_groups(_YMD.pattern)
    compact = t.str.extract_groups(_COMPACT.pattern)
    dmy = t.str.extract_groups(_DMY.pattern)
    a = dmy.struct.field("1").cast(pl.Int32, strict=False)
    b = dmy.struct.field("2").cast(pl.Int32, strict=False)
    if order not in (None, *DATE_ORDERS):
        raise ValueError(f"date order {order!r} is not one of {', '.join(DATE_ORDERS)}")
    day_first = (a > 12) | (a == b) if order is None else pl.lit(order == "dmy")
    month_first = (b > 12) & (a <= 12) if order is None else pl.lit(order == "mdy")
    dmy_day = pl.when(day_first).then(a).when(month_first).then(b)
    dmy_month = pl.when(day_first).then(b).when(month_first).then(a)

    def pick(i_ymd: int, i_compact: int | None, dmy_value: pl.Expr | None) -> pl.Expr:
        parts = [ymd.struct.field(str(i_ymd))]
        if i_compact is not None:
            parts.append(compact.struct.field(str(i_compact)))
        if dmy_value is not None:
            parts.append(dmy_value)
        return pl.coalesce(parts)

    year = pick(1, 1, dmy.struct.field("3"))
    month = pick(2, 2, dmy_month.cast(pl.String))
    day = pick(3, 3, dmy_day.cast(pl.String))
    hour = pick(4, 4, dmy.struct.field("4"))
    minute = pick(5, 5, dmy.struct.field("5"))
    second = pick(6, 6, dmy.struct.field("6"))
    fraction = pick(7, None, dmy.struct.field("7"))
    offset = ymd.struct.field("8")
    offset = pl.when(offset == "Z").then(pl.lit("+0000")).otherwise(offset.str.replace(":", ""))
    canonical = pl.concat_str(
        [
            year,
            pl.lit("-"),
            month.str.zfill(2),
            pl.lit("-"),
            day.str.zfill(2),
            pl.lit(" "),
            hour.fill_null("00").str.zfill(2),
            pl.lit(":"),
            minute.fill_null("00"),
            pl.lit(":"),
            second.fill_null("00"),
            fraction.fill_null(""),
        ]
    )
    return canonical, offset


def _excel_serial(text: pl.Expr) -> pl.Expr:
    """Datetime of an Excel serial day (`45352`, `45352.5`), null outside the plausible range."""
    t = nfkc(text)
    days = pl.when(t.str.contains(_SERIAL.pattern)).then(t.cast(pl.Float64, strict=False))
    lo, hi = EXCEL_SERIAL_RANGE
    seconds = pl.when(days.is_between(lo, hi)).then((days * 86400).round(0).cast(pl.Int64))
    return pl.lit(_EXCEL_EPOCH, pl.Datetime("us")) + pl.duration(seconds=seconds)


def parse_timestamp(text: pl.Expr, zone: str = DEFAULT_ZONE, order: str | None = None) -> pl.Expr:
    """Local wall time (naive `Datetime[us]`) in `zone` of a cleaned string column.

    Accepts every form in `DATE_FORMS`. A value with an offset is converted to `zone` (so
    `2024-02-29T16:00:00Z` is `2024-03-01 00:00:00` in Asia/Shanghai); one without is taken
    as already local. Null where the value is null, in no accepted form, not a real calendar
    day (`2024-02-30`), or ambiguous in day/month order (see `ambiguous_day_month`; `order`,
    `dmy` or `mdy`, settles it for a source known to write one order).
    """
    canonical, offset = _canonical(text, order)
    local = canonical.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
    aware = (
        pl.concat_str([canonical, offset])
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f%z", strict=False, time_unit="us")
        .dt.convert_time_zone(zone)
        .dt.replace_time_zone(None)
    )
    written = pl.when(offset.is_not_null()).then(aware).otherwise(local)
    return _named(pl.coalesce([written, _excel_serial(text)]), text)


def parse_date(text: pl.Expr, zone: str = DEFAULT_ZONE, order: str | None = None) -> pl.Expr:
    """Calendar date (`Date`) of a cleaned string column: the local date in `zone` for a value
    with an offset (`2024-03-01T00:00:00+08:00` is 1 March, not 29 February), the written
    date otherwise. Same forms and refusals as `parse_timestamp`."""
    return parse_timestamp(text, zone, order).dt.date()


def fast_date(text: pl.Expr, type_: str) -> pl.Expr:
    """The common ISO form only (`2024-03-01` or `2024-03-01 10:30:00`): a cheap first try
    before the full reader, for the columns where every value is already ISO."""
    if type_ == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    return text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")


# --- numbers ---------------------------------------------------------------------------

_CURRENCY = r"(?:¥|CNY|RMB|人民币)"
_PLAIN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_GROUPED = r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"  # 1,234 and 1,234,567.89
_COMMA_NUMBER = r"^[+-]?[\d.,]*,[\d.,]*$"  # digits with a comma that is not a clean grouping

NUMBER_FORMS = (
    "plain (`1234.5`, `-3`, `1.5e3`), thousands grouped with commas (`1,234.50`: a zh-CN "
    "export's comma is a thousands separator), a currency sign or code before or after "
    "(`¥`, `￥`, `CNY`, `RMB`, `元`), full-width digits (`１２３`); a percent sign (`15%` -> "
    "0.15) only in a column whose contract says `share: true`; parentheses for a negative "
    "(`(1,234.00)`) only where it says `negative_parens: true`"
)


def _number_body(text: pl.Expr) -> pl.Expr:
    """NFKC, currency signs and codes, inner spaces, parentheses and percent sign removed."""
    t = nfkc(text).str.replace_all(r"\s", "")
    t = t.str.replace(r"^([+-]?)" + _CURRENCY, "${1}").str.replace(r"(?:元|" + _CURRENCY + ")$", "")
    return t.str.replace(r"^\((.*)\)$", "${1}").str.replace(r"%$", "")


def _has_parens(text: pl.Expr) -> pl.Expr:
    return nfkc(text).str.replace_all(r"\s", "").str.contains(r"^[+-]?\(.*\)(?:元|%)?$|^¥?\(")


def _has_percent(text: pl.Expr) -> pl.Expr:
    return nfkc(text).str.strip_chars().str.ends_with("%")


def parse_number(text: pl.Expr, *, share: bool = False, negative_parens: bool = False) -> pl.Expr:
    """Float64 of a cleaned string column in any of `NUMBER_FORMS`.

    Null where the value is null, not a number, or refused: a comma that is not a clean
    thousands grouping (`1.234,5`, `12,34`: a decimal comma or a typo, see
    `ambiguous_number`), a percent sign where `share` is false, parentheses where
    `negative_parens` is false.
    """
    body = _number_body(text)
    certain = body.str.contains(_PLAIN) | body.str.contains(_GROUPED)
    value = pl.when(certain).then(body.str.replace_all(",", "").cast(pl.Float64, strict=False))
    parens, percent = _has_parens(text), _has_percent(text)
    value = pl.when(parens).then(-value if negative_parens else None).otherwise(value)
    value = pl.when(percent).then(value / 100 if share else None).otherwise(value)
    return _named(value, text)


def ambiguous_number(text: pl.Expr) -> pl.Expr:
    """True where a number holds a comma that is not a thousands grouping (`1.234,5`, `12,34`,
    `1,5`): a decimal comma and a thousands comma read differently, so it is refused."""
    body = _number_body(text)
    return _named(body.str.contains(_COMMA_NUMBER) & ~body.str.contains(_GROUPED), text)


def percent_refused(text: pl.Expr, share: bool) -> pl.Expr:
    """True where a value has a percent sign but the column is not a share."""
    return pl.lit(False) if share else _has_percent(text)


def parens_refused(text: pl.Expr, negative_parens: bool) -> pl.Expr:
    """True where a value is in parentheses but the column does not allow negatives so."""
    return pl.lit(False) if negative_parens else _has_parens(text)


def fast_number(text: pl.Expr) -> pl.Expr:
    """A plain float cast: the cheap first try before `parse_number`."""
    return text.cast(pl.Float64, strict=False)


# --- codes and ids ---------------------------------------------------------------------

_SCIENTIFIC = r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$"  # 1.62618E+11
_FLOAT_TAIL = r"^\d+\.0+$"  # 162617942.0, a code read as a float and written back

EXCEL_CAUSE = "Excel turned the code into a number; re-export with the column as text"


def code(text: pl.Expr) -> pl.Expr:
    """A code or id as stored: the cleaned value in NFKC (full-width `ＳＫＵ０００１` is
    `SKU0001`)."""
    return nfkc(text)


def code_digit_lengths(pattern: str) -> tuple[int, ...]:
    """Lengths n (1..30) at which n zeros match `pattern` in full: the sizes of an all-digit
    code, used to tell a code that lost its leading zeros."""
    compiled = re.compile(f"(?:{pattern})")
    return tuple(n for n in range(1, 31) if compiled.fullmatch("0" * n))


def excel_scientific(value: pl.Expr) -> pl.Expr:
    """True where a code reads as a number Excel wrote back (`1.62618E+11`, `162617942.0`):
    its digits are lost, so it is refused rather than loaded as a code."""
    return value.str.contains(_SCIENTIFIC) | value.str.contains(_FLOAT_TAIL)


def lost_leading_zeros(value: pl.Expr, pattern: str) -> pl.Expr:
    """True where an all-digit value fails `pattern` but matches once zero-padded to a size
    the pattern allows (`6000000586734571` for an 18-digit code): the leading zeros were
    dropped by a tool that read the code as a number."""
    lengths = code_digit_lengths(pattern)
    if not lengths:
        return pl.lit(False)
    full = f"^(?:{pattern})$"
    padded = pl.any_horizontal([value.str.zfill(n).str.contains(full) for n in lengths])
    return (
        value.str.contains(r"^\d+$")
        & (value.str.len_chars() < max(lengths))
        & ~value.str.contains(full)
        & padded
    )


# --- whole-column readers --------------------------------------------------------------


def read_number(
    raw: pl.Expr,
    *,
    tokens: tuple[str, ...] = NULL_TOKENS,
    share: bool = False,
    negative_parens: bool = False,
) -> pl.Expr:
    """Float64 of a raw string column: `clean` then `parse_number` (e.g. a forecast target
    written `1,200` or `¥846.00`, with `NULL` or `-` for no value). Refused values are null;
    tell them from null tokens with `clean(raw).is_not_null() & read_number(raw).is_null()`."""
    return parse_number(clean(raw, tokens), share=share, negative_parens=negative_parens)


def read_date(
    raw: pl.Expr,
    *,
    zone: str = DEFAULT_ZONE,
    tokens: tuple[str, ...] = NULL_TOKENS,
    order: str | None = None,
) -> pl.Expr:
    """`Date` of a raw string column: `clean` then `parse_date` (the local calendar date in
    `zone` of a value with an offset). Ambiguous day/month values are null; find them with
    `ambiguous_day_month(clean(raw))`."""
    return parse_date(clean(raw, tokens), zone, order)


def read_timestamp(
    raw: pl.Expr,
    *,
    zone: str = DEFAULT_ZONE,
    tokens: tuple[str, ...] = NULL_TOKENS,
    order: str | None = None,
) -> pl.Expr:
    """Naive local wall-time `Datetime[us]` in `zone` of a raw string column: `clean` then
    `parse_timestamp`."""
    return parse_timestamp(clean(raw, tokens), zone, order)
