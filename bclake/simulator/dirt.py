"""Dirt that real exports have, injected into the landing files after they are written.

Every fault is listed in the manifest with the file, the row (CSV rows count
the header as row 1; NDJSON rows are line numbers), the fault type and what
ingest is expected to do with it, so tests can prove each one is caught.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from bclake.core.contracts import Contract, load_contracts
from bclake.simulator.config import ScaleConfig

# fault -> what ingest should do with the affected rows or file
EXPECTED = {
    "duplicate_row": "loaded",  # same key twice: loaded, deduplicated in staging
    "duplicate_file": "skipped",  # same bytes under another name: ingested once
    "late_file": "loaded",
    "renamed_column": "loaded",  # header resolved through the contract's aliases
    "added_column": "loaded",  # kept aside and reported
    "gbk_encoding": "loaded",
    "mixed_date_format": "loaded",
    "bad_id": "quarantined",
    "negative_quantity": "loaded",  # a return
    "empty_file": "rejected",
    "truncated_file": "quarantined",  # its whole lines load; the line cut short does not
}
ROW_RATE = 0.002
MAX_REWRITE_BYTES = 128 * 2**20
SCHEMA = {
    "file": pl.String,
    "row": pl.Int64,
    "fault": pl.String,
    "detail": pl.String,
    "expected": pl.String,
}


class _Manifest:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self, file: Path, landing: Path, fault: str, row: int | None = None, detail: str = ""
    ) -> None:
        self.rows.append(
            {
                "file": str(file.relative_to(landing)),
                "row": row,
                "fault": fault,
                "detail": detail,
                "expected": EXPECTED[fault],
            }
        )

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=SCHEMA).sort("file", "row", "fault")


def _files(landing: Path, contract: Contract) -> list[Path]:
    folder = landing / contract.system / contract.table
    return sorted(p for p in folder.glob("*") if p.is_file())


def _header_offset(contract: Contract) -> int:
    return 1 if contract.format == "csv" else 0


def inject_dirt(landing: Path, cfg: ScaleConfig, rng: np.random.Generator) -> pl.DataFrame:
    """Inject every fault type at the configured rate; returns the fault manifest."""
    manifest = _Manifest()
    if cfg.dirt <= 0:
        return manifest.frame()
    contracts = load_contracts()
    by_file = {p: c for c in contracts.values() for p in _files(landing, c)}
    pick = _Picker(rng, max(1, round(2 * cfg.dirt)))
    events = [c for c in contracts.values() if c.event_date]
    # faults are written by rewriting text in memory: leave the very largest files alone
    event_files = [
        p for c in events for p in _files(landing, c) if p.stat().st_size <= MAX_REWRITE_BYTES
    ]
    _file_faults(landing, event_files, by_file, pick, manifest)
    _row_faults(landing, event_files, by_file, contracts, pick, manifest)
    for contract in (contracts["dms.store_orders"], contracts["erp.shipments"]):
        ext = "csv" if contract.format == "csv" else "ndjson"
        empty = landing / contract.system / contract.table / f"{contract.table}_empty.{ext}"
        empty.write_bytes(b"")
        manifest.add(empty, landing, "empty_file")
    for path in pick([p for p in event_files if by_file[p].format == "ndjson"], 1):
        data = path.read_bytes()
        cut = path.with_name(f"{path.stem}_partial{path.suffix}")
        end = len(data) // 2 + 7
        end -= 2 if data[end - 1 : end] == b"\n" else 0  # cut inside a line, not after one
        cut.write_bytes(data[:end])
        last_line = data[:end].count(b"\n") + 1
        manifest.add(
            cut, landing, "truncated_file", row=last_line, detail=f"first half of {path.name}"
        )
    return manifest.frame()


class _Picker:
    """Draws files for each fault, never the same file for two faults."""

    def __init__(self, rng: np.random.Generator, n_files: int) -> None:
        self.rng, self.n_files = rng, n_files
        self.used: set[Path] = set()

    def __call__(self, candidates: list[Path], n: int | None = None) -> list[Path]:
        """Up to `n` (default: the per-fault file count) unused files of `candidates`, in order."""
        free = [p for p in candidates if p not in self.used]
        if not free:
            return []
        size = min(self.n_files if n is None else n, len(free))
        chosen = [free[i] for i in sorted(self.rng.choice(len(free), size=size, replace=False))]
        self.used.update(chosen)
        return chosen


def _file_faults(
    landing: Path,
    event_files: list[Path],
    by_file: dict[Path, Contract],
    pick: _Picker,
    manifest: _Manifest,
) -> None:
    """Faults of whole files: duplicated rows and files, late files, headers, encoding."""
    csv_alias = [
        p
        for p in event_files
        if by_file[p].format == "csv" and any(col.aliases for col in by_file[p].all_columns)
    ]
    for path in pick(event_files):
        _duplicate_rows(path, by_file[path], landing, manifest, pick.rng)
    for path in pick(event_files, 1):
        copy = path.with_name(f"{path.stem} (1){path.suffix}")
        shutil.copyfile(path, copy)
        manifest.add(copy, landing, "duplicate_file", detail=f"same bytes as {path.name}")
    for path in pick(event_files, 1):
        _late_file(path, landing, manifest, by_file[path])
    for path in pick(csv_alias, 1):
        _rename_column(path, by_file[path], landing, manifest)
    for path in pick([p for p in event_files if by_file[p].format == "csv"], 1) + pick(
        [p for p in event_files if by_file[p].format == "ndjson"], 1
    ):
        _add_column(path, by_file[path], landing, manifest)
    for path in pick([p for p in csv_alias if "gbk" in by_file[p].encodings], 1):
        path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
        manifest.add(path, landing, "gbk_encoding")


def _row_faults(
    landing: Path,
    event_files: list[Path],
    by_file: dict[Path, Contract],
    contracts: dict[str, Contract],
    pick: _Picker,
    manifest: _Manifest,
) -> None:
    """Faults of single rows: mixed date formats, malformed ids, negative quantities."""
    for path in pick([p for p in event_files if by_file[p].format == "csv"]):
        _mixed_dates(path, by_file[path], landing, manifest, pick.rng)
    for path in pick([p for p in event_files if any(c.pattern for c in by_file[p].all_columns)]):
        _bad_ids(path, by_file[path], landing, manifest, pick.rng)
    for path in pick(_files(landing, contracts["dms.sell_through"])):
        _negative_qty(path, landing, manifest, pick.rng)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _save(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sample_rows(lines: list[str], contract: Contract, rng: np.random.Generator) -> np.ndarray:
    """Indices (into `lines`) of data rows to damage: ROW_RATE of them, at least one."""
    first = _header_offset(contract)
    n = len(lines) - first
    k = max(1, int(n * ROW_RATE))
    return np.sort(rng.choice(n, size=min(k, n), replace=False)) + first


def _duplicate_rows(
    path: Path, contract: Contract, landing: Path, manifest: _Manifest, rng: np.random.Generator
) -> None:
    lines = _lines(path)
    for i in _sample_rows(lines, contract, rng):
        lines.append(lines[i])
        manifest.add(path, landing, "duplicate_row", len(lines), f"copy of row {i + 1}")
    _save(path, lines)


def _late_file(path: Path, landing: Path, manifest: _Manifest, contract: Contract) -> None:
    lines = _lines(path)
    first = _header_offset(contract)
    cut = max(first + 1, len(lines) - max(1, (len(lines) - first) // 30))
    late = path.with_name(f"{path.stem}_late{path.suffix}")
    _save(late, lines[:first] + lines[cut:])
    _save(path, lines[:cut])
    manifest.add(late, landing, "late_file", detail=f"last rows of {path.name}, sent later")


def _rename_column(path: Path, contract: Contract, landing: Path, manifest: _Manifest) -> None:
    lines = _lines(path)
    header = lines[0].split(",")
    for col in contract.all_columns:
        if col.aliases and col.aliases[0] in header:
            old, new = col.aliases[0], col.source
        elif col.aliases and col.source in header:
            old, new = col.source, col.aliases[0]
        else:
            continue
        header[header.index(old)] = new
        lines[0] = ",".join(header)
        _save(path, lines)
        manifest.add(path, landing, "renamed_column", detail=f"{old} -> {new}")
        return


def _add_column(path: Path, contract: Contract, landing: Path, manifest: _Manifest) -> None:
    lines = _lines(path)
    if contract.format == "csv":
        lines = [lines[0] + ",remark"] + [line + ",ok" for line in lines[1:]]
    else:
        lines = [line[:-1] + ',"ext":"v2"}' for line in lines]
    _save(path, lines)
    manifest.add(
        path, landing, "added_column", detail="remark" if contract.format == "csv" else "ext"
    )


def _column_index(lines: list[str], contract: Contract, kind: str) -> tuple[int, str] | None:
    header = lines[0].split(",")
    for col in contract.all_columns:
        if col.type == kind or (kind == "id" and col.pattern):
            for name in col.accepted_headers:
                if name in header:
                    return header.index(name), col.name
    return None


def _mixed_dates(
    path: Path, contract: Contract, landing: Path, manifest: _Manifest, rng: np.random.Generator
) -> None:
    lines = _lines(path)
    found = _column_index(lines, contract, "date") or _column_index(lines, contract, "timestamp")
    if not found:
        return
    col, name = found
    for i in _sample_rows(lines, contract, rng):
        cells = lines[i].split(",")
        cells[col] = re.sub(r"^(\d{4})-(\d{2})-(\d{2})", r"\1/\2/\3", cells[col])
        lines[i] = ",".join(cells)
        manifest.add(path, landing, "mixed_date_format", int(i) + 1, f"{name}: {cells[col]}")
    _save(path, lines)


def _bad_ids(
    path: Path, contract: Contract, landing: Path, manifest: _Manifest, rng: np.random.Generator
) -> None:
    lines = _lines(path)
    id_col = next(c for c in contract.all_columns if c.pattern)
    for i in _sample_rows(lines, contract, rng):
        if contract.format == "csv":
            found = _column_index(lines, contract, "id")
            if not found:
                return
            col, name = found
            cells = lines[i].split(",")
            cells[col] = cells[col][:1] + "-" + cells[col][1:] if cells[col] else "?"
            lines[i] = ",".join(cells)
        else:
            name = id_col.name
            lines[i] = re.sub(
                rf'("{re.escape(id_col.source)}":")([A-Z]+)', r"\1\2-", lines[i], count=1
            )
        manifest.add(
            path,
            landing,
            "bad_id",
            int(i) + 1 + (contract.format == "csv") * 0,
            f"{name} malformed",
        )
    _save(path, lines)


def _negative_qty(path: Path, landing: Path, manifest: _Manifest, rng: np.random.Generator) -> None:
    lines = _lines(path)
    for i in np.sort(
        rng.choice(len(lines), size=max(1, int(len(lines) * ROW_RATE)), replace=False)
    ):
        lines[i] = re.sub(r'"qty":(\d+)', r'"qty":-\1', lines[i], count=1)
        manifest.add(path, landing, "negative_quantity", int(i) + 1, "a return")
    _save(path, lines)
