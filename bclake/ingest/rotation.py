"""The lake under a new pseudonymisation key (`bclake rotate-pii-key`), and the check that
every ingest uses the key the lake was written with.

A pseudonym is HMAC-SHA256 of a clear value (`core.pii`); it cannot be turned into the
pseudonym of the same value under another key without that value, and the landing files
that held the clear values may be long gone. So a rotation hashes every stored pseudonym
once more under the new key (`core.pii.rekeyer`): the lake then holds
`HMAC(new, HMAC(old, value))`, and ingest makes the same from a clear value through the
key chain (`Settings.pii_keys`: the retired keys, then `BCLAKE_PII_KEY`). A leaked old key
alone no longer tells which pseudonym is whose: the new key is needed too.

Which stored values are pseudonyms: every value of a `pii` column; in any other text (file
names, `_extra`, quarantined lines, messages) every run of exactly 52 base32 characters
(the form bclake writes, `[a-z2-7]{52}` between other characters), and any stretch of a
longer run that is a pseudonym found so (or one computed from a landing file's name: a
phone glued to letters, `tel138...csv`). A pseudonym glued to letters whose clear value
is nowhere any more stays under the old key; it joins nothing.

The step works from one mapping old -> new (`build_mapping`), kept in the data root's
private folder until the rotation has finished, so a rotation cut short is finished by
running the command again: replacing by the mapping is idempotent (a new pseudonym is
never an old one).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from bclake.core.pii import PiiKey, pseudonym, pseudonyms_in, rekeyer, seal, unseal
from bclake.core.scrub import PSEUDONYM_RUN
from bclake.core.settings import Settings
from bclake.ingest.erasure import listed, read_subjects, subjects_path
from bclake.ingest.paths import write_parquet_atomic

KEY_FILE = "_pii/key.json"  # under lake/: which key chain made the lake's pseudonyms
MAPPING_FILE = "rotation-mapping.parquet"  # in the private folder while a rotation runs
MAPPING_SCHEMA = {"old": pl.String, "new": pl.String}
_EXACT = re.compile(r"(?:^|[^a-z2-7])([a-z2-7]{52})(?=[^a-z2-7]|$)")
_CHECK_VALUE = "bclake/pii-key-check"


class KeyMismatch(RuntimeError):
    """The configured key chain is not the one the lake was written with, or a rotation
    has not finished."""


def key_check(key: PiiKey) -> str:
    """A fingerprint of a key chain: the pseudonym of a fixed value under it (tells
    chains apart; as hard to invert as any pseudonym in the lake)."""
    return pseudonym(_CHECK_VALUE, key)


def key_path(settings: Settings) -> Path:
    return settings.lake / KEY_FILE


def mapping_path(settings: Settings) -> Path:
    return settings.private_dir / MAPPING_FILE


def write_key_check(settings: Settings, key: PiiKey) -> None:
    """Record which key chain made the lake's pseudonyms (atomically)."""
    path = key_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    chain = [key] if isinstance(key, str) else list(key)
    tmp.write_text(json.dumps({"check": key_check(key), "keys": len(chain)}))
    os.replace(tmp, path)


def verify_key(settings: Settings) -> None:
    """Refuse to write pseudonyms under another key chain than the lake's: raises
    `KeyMismatch` naming what to set. A lake without a record (new, or written by an
    earlier bclake) takes the configured chain as its own."""
    if mapping_path(settings).exists():
        raise KeyMismatch(
            "a PII key rotation has not finished: run `bclake rotate-pii-key` again with "
            "the same BCLAKE_PII_KEY, BCLAKE_PII_KEY_RETIRED and BCLAKE_PII_KEY_NEW"
        )
    path = key_path(settings)
    if not path.exists():
        write_key_check(settings, settings.pii_keys)
        return
    recorded = json.loads(path.read_text())
    if recorded.get("check") != key_check(settings.pii_keys):
        raise KeyMismatch(
            f"BCLAKE_PII_KEY (with BCLAKE_PII_KEY_RETIRED: {len(settings.pii_key_retired)} "
            f"retired keys) is not the key chain that made this lake's pseudonyms "
            f"({recorded.get('keys', '?')} keys, {path}); set the keys the lake was written "
            "with (after a rotation: the new key, and the old ones as retired)"
        )


def _lake_parts(settings: Settings) -> list[Path]:
    """Every Parquet file of the lake (tables, quarantine, ledger, set-aside parts, receipts)
    but the erasure list (sealed, handled on its own)."""
    skip = subjects_path(settings)
    return sorted(p for p in settings.lake.rglob("*.parquet") if p.is_file() and p != skip)


def _texts(path: Path) -> list[str]:
    return [c for c, t in pl.read_parquet_schema(path).items() if t == pl.String]


def build_mapping(settings: Settings, old: PiiKey, new_key: str) -> pl.DataFrame:
    """Old pseudonym -> new (`MAPPING_SCHEMA`) for every pseudonym the lake holds: runs of
    exactly 52 base32 characters in its text (a PII column's values among them), the
    erasure list (unsealed under the old newest key) and those the landing files' names
    make under the old chain `old`."""
    found: set[str] = set()
    for part in _lake_parts(settings):
        columns = _texts(part)
        if not columns:
            continue
        frame = pl.read_parquet(part, columns=columns)
        for c in columns:
            values = frame[c].drop_nulls()
            for value in values.filter(values.str.contains("[a-z2-7]{52}")).unique():
                found.update(_EXACT.findall(value))
    subjects = read_subjects(settings)
    if subjects.height:
        found.update(name for _, name in listed(settings, subjects))
    for path in settings.landing.rglob("*"):
        found.update(pseudonyms_in(str(path.relative_to(settings.landing)), old))
    step = rekeyer(new_key)
    old_values = sorted(found)
    return pl.DataFrame(
        {"old": old_values, "new": [step(v) for v in old_values]}, schema=MAPPING_SCHEMA
    )


def rekey_text(value: str, mapping: Mapping[str, str]) -> str:
    """`value` with every 52-character stretch of its base32 runs that is an old pseudonym
    replaced by the new one."""

    def swap(match: re.Match[str]) -> str:
        run, out, i = match.group(0), [], 0
        while i < len(run):
            new = mapping.get(run[i : i + 52])
            if new is not None:
                out.append(new)
                i += 52
            else:
                out.append(run[i])
                i += 1
        return "".join(out)

    return PSEUDONYM_RUN.sub(swap, value)


def rekey_lake(
    settings: Settings, mapping: Mapping[str, str], progress: Callable[[int, int], None]
) -> int:
    """Rewrite every lake part holding an old pseudonym with the new ones (each part
    atomically; types, row order and other values unchanged); returns parts rewritten.
    `progress(done, total)` is called as parts are checked."""
    parts = _lake_parts(settings)
    rewritten = 0
    for n, part in enumerate(parts, 1):
        columns = _texts(part)
        if columns:
            rewritten += _rekey_part(part, columns, mapping)
        progress(n, len(parts))
    return rewritten


def _rekey_part(part: Path, columns: list[str], mapping: Mapping[str, str]) -> int:
    frame = pl.read_parquet(part)
    changes = []
    for c in columns:
        values = frame[c].drop_nulls()
        values = values.filter(values.str.contains("[a-z2-7]{52}")).unique().to_list()
        pairs = [(v, rekey_text(v, mapping)) for v in values]
        pairs = [(a, b) for a, b in pairs if a != b]
        if pairs:
            old, new = zip(*pairs, strict=True)
            changes.append(pl.col(c).replace(list(old), list(new)))
    if not changes:
        return 0
    write_parquet_atomic(frame.with_columns(changes), part)
    return 1


def reseal_subjects(
    settings: Settings, mapping: Mapping[str, str], old_key: str, new_key: str
) -> int:
    """Move the erasure list to the new key: each sealed pseudonym unsealed under the old
    newest key, mapped, sealed under the new one (a row sealed under the new key already,
    by a rotation cut short, is kept). Returns rows resealed. Raises `KeyMismatch` for a
    row neither key opens to a known pseudonym."""
    subjects = read_subjects(settings)
    if subjects.is_empty():
        return 0
    news = set(mapping.values())
    sealed, moved = [], 0
    for value in subjects["sealed"]:
        name = unseal(value, old_key)
        if name in mapping:
            sealed.append(seal(mapping[name], new_key))
            moved += 1
        elif unseal(value, new_key) in news:
            sealed.append(value)
        else:
            raise KeyMismatch(f"{subjects_path(settings)}: a row no key opens")
    write_parquet_atomic(subjects.with_columns(sealed=pl.Series(sealed)), subjects_path(settings))
    return moved
