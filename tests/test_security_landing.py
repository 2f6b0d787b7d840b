"""Landing is untrusted: only settled regular files inside the landing root are read, within
the contract's size limit, and what is kept of a file that cannot be loaded is a short,
redacted excerpt.

Every test lands a few hand-made files in a temporary data root (no simulated world).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from bclake.core.contracts import Contract, load_contract, load_contracts
from bclake.core.settings import Settings
from bclake.ingest import loader, paths
from bclake.ingest.ledger import FileResult, read_ledger
from bclake.ingest.loader import EXCERPT_CHARS, ingest_table, raw_excerpt, reingest_days
from bclake.ingest.report import lake_audit

KEY = "a-secret-key-for-tests"
SECRET = "BCLAKE_PII_KEY=do-not-leak-this-key-7f3a9c"
HEADER = "warehouse_code,warehouse_name,warehouse_type,region,city\n"
ROW = "DC01,华东仓,DC,East,上海\n"
STORE = {
    "storeCode": "S000001",
    "storeName": "便利店",
    "channelType": "CVS",
    "sizeClass": "S",
    "region": "East",
    "province": "浙江",
    "city": "杭州",
    "lat": 30.2,
    "lon": 120.1,
    "distributorCode": "D0001",
    "onboardDate": "2024-01-02",
    "hasPos": True,
    "miniProgramActive": False,
    "isPartner": False,
}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCLAKE_PII_KEY", KEY)
    monkeypatch.setenv(paths.SETTLE_ENV, "0")


def _folder(home: Path, contract: Contract) -> Path:
    folder = home / "landing" / contract.system / contract.table
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _warehouses() -> Contract:
    return load_contracts()["erp.warehouses"]


def _stores() -> Contract:
    return load_contracts()["dms.stores"]


def _ingest(home: Path, contract: Contract) -> list[FileResult]:
    return ingest_table(contract, Settings.from_env(home)).files


def _published_text(home: Path) -> str:
    """Everything the audit publishes and the lake's quarantine keeps, as one text."""
    settings = Settings.from_env(home)
    texts = [frame.write_csv() for frame in lake_audit(settings).values()]
    for part in (home / "lake" / "_quarantine").rglob("*.parquet"):
        texts.append(pl.read_parquet(part).write_csv())
    return "\n".join(texts)


def _lake_rows(home: Path, contract: Contract) -> int:
    folder = home / "lake" / contract.system / contract.table
    parts = [p for p in folder.rglob("part-*.parquet")]
    return sum(pl.read_parquet(p).height for p in parts)


def _secret_file(tmp_path: Path, text: str = SECRET + "\n") -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    path = outside / "secrets.env"
    path.write_text(text)
    return path


# --- links, devices, FIFOs, sockets ---------------------------------------------------------


def test_a_link_to_the_process_environment_is_refused_unread(tmp_path: Path) -> None:
    """The reported leak: a link to /proc/self/environ landed as a DMS stores export."""
    home = tmp_path / "home"
    contract = _stores()
    (_folder(home, contract) / "x.ndjson").symlink_to("/proc/self/environ")
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason, result.rows_in) == ("rejected", "symlink", 0)
    assert "x.ndjson" in result.message and "link" in result.message
    assert "copy the file itself" in result.message.lower()  # the fix
    ledger = read_ledger(Settings.from_env(home), contract)
    assert ledger.height == 1 and ledger["sha256"][0] is None  # nothing was read to hash
    published = _published_text(home)
    for value in ("PATH=", os.environ["PATH"], KEY):
        assert value not in published
    assert not (home / "lake" / "_quarantine").exists()


def test_a_link_to_a_valid_export_outside_landing_is_not_loaded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    target = _secret_file(tmp_path, HEADER + ROW)
    (_folder(home, contract) / "w.csv").symlink_to(target)
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason) == ("rejected", "symlink")
    assert _lake_rows(home, contract) == 0


def test_a_link_to_an_endless_device_is_refused_without_reading(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    (_folder(home, contract) / "zero.csv").symlink_to("/dev/zero")
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason) == ("rejected", "symlink")


@pytest.mark.parametrize("linked", ["system", "table"])
def test_a_linked_landing_folder_is_refused(tmp_path: Path, linked: str) -> None:
    """A folder under landing/ that is a link leads outside it: nothing inside is read."""
    home = tmp_path / "home"
    contract = _warehouses()
    outside = tmp_path / "outside" / "erp" / "warehouses"
    outside.mkdir(parents=True)
    (outside / "w.csv").write_text(HEADER + ROW)
    (home / "landing").mkdir(parents=True)
    if linked == "system":
        (home / "landing" / "erp").symlink_to(outside.parent)
        rel = "erp"
    else:
        (home / "landing" / "erp").mkdir()
        (home / "landing" / "erp" / "warehouses").symlink_to(outside)
        rel = "erp/warehouses"
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason, result.file) == ("rejected", "symlink", rel)
    assert _lake_rows(home, contract) == 0


def test_a_fifo_is_refused_and_never_blocks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    os.mkfifo(_folder(home, contract) / "pipe.csv")
    done: list[list[FileResult]] = []
    worker = threading.Thread(target=lambda: done.append(_ingest(home, contract)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done, "ingest blocked on a FIFO"
    (result,) = done[0]
    assert (result.status, result.reason) == ("rejected", "not_regular_file")
    assert "FIFO" in result.message


def test_a_socket_and_a_device_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    folder = _folder(home, contract)
    names = []
    if len(str(folder / "s.csv")) < 100:  # AF_UNIX path limit
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(folder / "s.csv"))
        names.append("s.csv")
    try:
        os.mknod(folder / "null.csv", 0o600 | 0o020000, os.makedev(1, 3))  # like /dev/null
        names.append("null.csv")
    except PermissionError:
        pass
    if not names:
        pytest.skip("cannot make a socket or a device node here")
    results = {Path(r.file).name: r for r in _ingest(home, contract)}
    assert sorted(results) == sorted(names)
    for result in results.values():
        assert (result.status, result.reason) == ("rejected", "not_regular_file")


def test_a_hard_link_to_a_file_outside_landing_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    target = _secret_file(tmp_path, HEADER + ROW)
    os.link(target, _folder(home, contract) / "w.csv")
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason) == ("rejected", "hard_link")
    assert _lake_rows(home, contract) == 0


def test_a_refused_file_is_recorded_once_and_loads_once_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    link = _folder(home, contract) / "w.csv"
    link.symlink_to(_secret_file(tmp_path, HEADER + ROW))
    _ingest(home, contract)
    (again,) = _ingest(home, contract)
    assert (again.status, again.reason) == ("skipped", "already_refused")
    assert read_ledger(Settings.from_env(home), contract).height == 1
    link.unlink()
    link.write_text(HEADER + ROW)  # the operator copies the file itself
    (fixed,) = _ingest(home, contract)
    assert fixed.status == "loaded" and _lake_rows(home, contract) == 1


def test_a_link_swapped_in_after_listing_is_caught_by_the_open(tmp_path: Path) -> None:
    """The check and the open race: the open refuses a link (O_NOFOLLOW) and fstat checks
    the opened file is the one listed."""
    home = tmp_path / "home"
    contract = _warehouses()
    folder = _folder(home, contract)
    (folder / "w.csv").write_text(HEADER + ROW)
    (listing,) = paths.list_landing(home / "landing", contract)
    assert listing.refusal is None
    (folder / "w.csv").unlink()
    (folder / "w.csv").symlink_to(_secret_file(tmp_path))
    with pytest.raises(paths.Refused) as refused:
        paths.read_landing(home / "landing", listing, contract)
    assert refused.value.reason == "symlink"
    (folder / "w.csv").unlink()
    (folder / "w.csv").write_text(HEADER + ROW)  # another file under the same name
    with pytest.raises(paths.NotSettled):
        paths.read_landing(home / "landing", listing, contract)


def test_a_backfill_reads_only_regular_files_inside_landing(tmp_path: Path) -> None:
    """A source replaced by a link (same bytes) or a tampered ledger path is not re-read."""
    home = tmp_path / "home"
    contract = load_contracts()["erp.shipments"]
    header = "发货单号,经销商编码,仓库编码,订单日期,发货日期,产品编码,订货数量,发货数量,金额\n"
    data = header + "SH90000051,D0003,DC03,2024-03-01,2024-03-02,SKU0001,24,24,64.8\n"
    path = _folder(home, contract) / "s.csv"
    path.write_text(data)
    (loaded,) = _ingest(home, contract)
    assert loaded.status == "loaded"
    path.unlink()
    path.symlink_to(_secret_file(tmp_path, data))
    (kept,) = reingest_days(contract, Settings.from_env(home), ["2024-03-02"]).files
    assert (kept.status, kept.reason) == ("kept", "symlink")
    ledger_file = home / "lake" / "_ledger" / "erp__shipments.parquet"
    ledger = pl.read_parquet(ledger_file)
    ledger.with_columns(pl.lit("erp/shipments/../../../outside/secrets.env").alias("file")).pipe(
        paths.write_parquet_atomic, ledger_file
    )
    (outside,) = reingest_days(contract, Settings.from_env(home), ["2024-03-02"]).files
    assert (outside.status, outside.reason) == ("kept", "outside_landing")


# --- size limits ------------------------------------------------------------------------------


def test_contracts_carry_a_size_limit_with_a_default(tmp_path: Path) -> None:
    assert _warehouses().max_file_mb == 1024
    assert _warehouses().max_file_bytes == 1024 * 1024 * 1024
    spec = (Path(__file__).parents[1] / "contracts/erp/warehouses.yaml").read_text()
    (tmp_path / "w.yaml").write_text(spec + "max_file_mb: 5\n")
    assert load_contract(tmp_path / "w.yaml").max_file_bytes == 5 * 1024 * 1024
    (tmp_path / "bad.yaml").write_text(spec + "max_file_mb: 0\n")
    with pytest.raises(ValueError, match="max_file_mb"):
        load_contract(tmp_path / "bad.yaml")


def test_an_oversized_file_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    contract = replace(_warehouses(), max_file_mb=0.001)  # 1,048 bytes
    (_folder(home, contract) / "big.csv").write_text(HEADER + ROW * 100)
    (_folder(home, contract) / "small.csv").write_text(HEADER + ROW)
    read: list[str] = []
    original = paths.read_landing
    monkeypatch.setattr(
        loader, "read_landing", lambda root, f, c: read.append(f.name) or original(root, f, c)
    )
    results = {Path(r.file).name: r for r in _ingest(home, contract)}
    assert (results["big.csv"].status, results["big.csv"].reason) == ("rejected", "file_too_large")
    assert "max_file_mb" in results["big.csv"].message
    assert results["small.csv"].status == "loaded"
    assert read == ["small.csv"]


# --- files still being written -------------------------------------------------------------


def test_a_file_still_being_written_waits_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.SETTLE_ENV, "1")
    home = tmp_path / "home"
    contract = _warehouses()
    path = _folder(home, contract) / "w.csv"
    path.write_text(HEADER + ROW)

    def keep_writing() -> None:
        for i in range(2, 6):
            time.sleep(0.3)
            with path.open("a") as out:
                out.write(f"DC0{i},仓{i},DC,East,上海\n")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    (first,) = _ingest(home, contract)
    writer.join()
    assert (first.status, first.reason) == ("skipped", "not_settled")
    assert read_ledger(Settings.from_env(home), contract).height == 0
    assert _lake_rows(home, contract) == 0
    (second,) = _ingest(home, contract)  # the upload has finished: the whole file loads
    assert second.status == "loaded" and second.rows_loaded == 5


def test_a_young_file_that_stays_unchanged_loads_in_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.SETTLE_ENV, "0.5")
    home = tmp_path / "home"
    contract = _warehouses()
    (_folder(home, contract) / "w.csv").write_text(HEADER + ROW)
    started = time.monotonic()
    (result,) = _ingest(home, contract)
    assert result.status == "loaded"
    assert time.monotonic() - started >= 0.4  # it waited for the file to settle


def test_the_settle_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.SETTLE_ENV)
    assert paths.settle_seconds() == paths.DEFAULT_SETTLE_SECONDS
    monkeypatch.setenv(paths.SETTLE_ENV, "2.5")
    assert paths.settle_seconds() == 2.5
    monkeypatch.setenv(paths.SETTLE_ENV, "-1")
    with pytest.raises(ValueError, match=paths.SETTLE_ENV):
        paths.settle_seconds()


# --- what is kept of what cannot be loaded ---------------------------------------------------


def test_an_unparseable_line_keeps_a_short_redacted_excerpt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _stores()
    garbage = "{not json 13800000020 " + "x" * 5000 + SECRET
    lines = [json.dumps(STORE, ensure_ascii=False), garbage]
    (_folder(home, contract) / "s.ndjson").write_text("\n".join(lines) + "\n")
    (result,) = _ingest(home, contract)
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("partial", 1, 1)
    quarantine = pl.read_parquet(home / "lake/_quarantine/dms/stores/*.parquet")
    raw = quarantine["raw"][0]
    assert len(raw) <= EXCERPT_CHARS and raw.endswith("…")
    assert "13800000020" not in raw and raw.startswith("{not json ")
    published = _published_text(home)
    assert SECRET not in published and "13800000020" not in published


def test_a_rejected_file_keeps_one_short_excerpt_not_its_content(tmp_path: Path) -> None:
    """An NDJSON file none of whose lines is JSON: every line is counted, one excerpt kept."""
    home = tmp_path / "home"
    contract = _stores()
    lines = [f"HOME{i}=/root PHONE=1390000{i:04d} {SECRET}" for i in range(300)]
    (_folder(home, contract) / "env.ndjson").write_text("\n".join(lines))
    (result,) = _ingest(home, contract)
    assert (result.status, result.rows_in, result.rows_quarantined) == ("rejected", 300, 300)
    quarantine = pl.read_parquet(home / "lake/_quarantine/dms/stores/*.parquet")
    assert quarantine.height == 300  # one row per line, for the ledger's balance
    kept = quarantine["raw"].drop_nulls()
    assert kept.len() == 1 and len(kept[0]) <= EXCERPT_CHARS
    assert "13900000000" not in kept[0]
    assert sum(len(v) for v in quarantine["message"]) < 300 * 400
    assert "1390000" not in _published_text(home)


def test_a_huge_header_is_not_quoted_whole_in_the_message(tmp_path: Path) -> None:
    """A CSV without the required columns lists the headers it found, each cut short."""
    home = tmp_path / "home"
    contract = _warehouses()
    header = ",".join(f"col{i}" for i in range(200)) + "," + "y" * 3000 + SECRET
    (_folder(home, contract) / "w.csv").write_text(header + "\n" + ",".join(["1"] * 201) + "\n")
    (result,) = _ingest(home, contract)
    assert (result.status, result.reason) == ("rejected", "missing_column")
    assert len(result.message) < 2000 and "col0" in result.message
    assert SECRET not in _published_text(home)


def test_raw_excerpt_is_short_redacted_and_never_ends_in_half_a_number() -> None:
    assert raw_excerpt("a,b,13800000020", KEY) == raw_excerpt("a,b,13800000020", KEY)
    assert "13800000020" not in raw_excerpt("a,b,13800000020", KEY)
    long = "x" * (EXCERPT_CHARS - 5) + "123456789012345678"  # an ID-card-length number
    cut = raw_excerpt(long, KEY)
    assert len(cut) <= EXCERPT_CHARS and cut.endswith("x…")
    nul = raw_excerpt("A=1\x00B=2\x1b[31m", KEY)
    assert "\x00" not in nul and "\x1b" not in nul
    assert raw_excerpt("ok", KEY) == "ok"


# --- hostile content and names -----------------------------------------------------------------


def test_json_nested_too_deep_or_a_huge_number_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contract = _stores()
    lines = [
        json.dumps(STORE, ensure_ascii=False),
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"storeCode": ' + "9" * 5_000 + "}",
    ]
    (_folder(home, contract) / "s.ndjson").write_text("\n".join(lines) + "\n")
    (result,) = _ingest(home, contract)
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("partial", 1, 3)
    quarantine = pl.read_parquet(home / "lake/_quarantine/dms/stores/*.parquet")
    assert set(quarantine["reason"]) == {"malformed_json"}
    assert quarantine["raw"].str.len_chars().max() <= EXCERPT_CHARS


@pytest.mark.parametrize("name", [b"\xff\xfe.csv", b"line\nbreak.csv", b"esc\x1b[2J.csv"])
def test_a_file_name_that_is_not_utf8_or_holds_control_characters_is_refused(
    tmp_path: Path, name: bytes
) -> None:
    home = tmp_path / "home"
    contract = _warehouses()
    folder = _folder(home, contract)
    (Path(os.fsdecode(os.fsencode(folder) + b"/" + name))).write_text(HEADER + ROW)
    (folder / "good.csv").write_text(HEADER + ROW.replace("DC01", "DC02"))
    results = {r.reason: r for r in _ingest(home, contract)}
    assert results["bad_file_name"].status == "rejected"
    assert "\x1b" not in results["bad_file_name"].file + results["bad_file_name"].message
    assert results[None].status == "loaded"
    read_ledger(Settings.from_env(home), contract)  # the ledger was written and reads


def test_a_workbook_that_unpacks_past_the_limit_is_refused(tmp_path: Path) -> None:
    """A zip bomb: a small .xlsx whose members unpack to far more than the contract allows."""
    import io
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "warehouses"
    for line in (HEADER + ROW).splitlines():
        book.active.append(line.split(","))
    plain = io.BytesIO()
    book.save(plain)
    bomb = io.BytesIO(plain.getvalue())
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\0" * 3 * 1024 * 1024)
    assert len(bomb.getvalue()) < 1024 * 1024 // 10
    contract = replace(_warehouses(), max_file_mb=1)
    home = tmp_path / "home"
    (_folder(home, contract) / "bomb.xlsx").write_bytes(bomb.getvalue())
    (refused,) = ingest_table(contract, Settings.from_env(home)).files
    assert (refused.status, refused.reason) == ("rejected", "file_too_large")
    assert "unpacks to" in refused.message
    other = tmp_path / "other"
    (_folder(other, contract) / "plain.xlsx").write_bytes(plain.getvalue())
    (loaded,) = ingest_table(contract, Settings.from_env(other)).files
    assert loaded.status == "loaded"


def test_a_row_breaking_the_contract_keeps_a_capped_message_and_excerpt(tmp_path: Path) -> None:
    """A value of 20,000 characters in a row that breaks a rule is not kept whole."""
    home = tmp_path / "home"
    contract = _warehouses()
    huge = "Z" * 20_000 + SECRET
    (_folder(home, contract) / "w.csv").write_text(HEADER + ROW + f"DC02,仓,{huge},East,上海\n")
    (result,) = _ingest(home, contract)
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("partial", 1, 1)
    quarantine = pl.read_parquet(home / "lake/_quarantine/erp/warehouses/*.parquet")
    row = quarantine.row(0, named=True)
    assert len(row["raw"]) <= EXCERPT_CHARS and len(row["message"]) <= 1000
    assert row["message"].endswith("…") and "DC02" in row["raw"]
    assert SECRET not in _published_text(home)


def test_quarantine_kept_before_excerpts_were_capped_is_scrubbed(tmp_path: Path) -> None:
    """A data root that already holds whole raw lines (the environment read through a link,
    a long bad line) stops keeping and publishing them at the next run."""
    home = tmp_path / "home"
    contract = _stores()
    folder = _folder(home, contract)
    (folder / "env.ndjson").write_text(SECRET + " not json\nnor this\n")
    (folder / "s.ndjson").write_text(json.dumps(STORE, ensure_ascii=False) + "\n{bad\n")
    _ingest(home, contract)
    quarantine = home / "lake/_quarantine/dms/stores"
    for part in quarantine.glob("*.parquet"):  # as an earlier version kept them
        old = pl.read_parquet(part)
        old.with_columns(pl.lit("{bad " + "x" * 300 + SECRET).alias("raw")).write_parquet(part)
    assert SECRET in _published_text(home)
    _ingest(home, contract)
    assert SECRET not in _published_text(home)
    parts = {p.name: pl.read_parquet(p) for p in quarantine.glob("*.parquet")}
    kept = [f["raw"].drop_nulls().len() for f in parts.values()]
    assert sorted(kept) == [0, 1]  # the rejected file keeps nothing, the other its excerpt


def test_an_unreadable_file_is_refused_and_the_others_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the ingest account may not open no longer stops the table (it raised before)."""
    home = tmp_path / "home"
    contract = _warehouses()
    folder = _folder(home, contract)
    (folder / "locked.csv").write_text(HEADER + ROW)
    (folder / "open.csv").write_text(HEADER + ROW.replace("DC01", "DC02"))
    real_open = os.open

    def open_as_another_user(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if path == "locked.csv":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_as_another_user)
    results = {Path(r.file).name: r for r in _ingest(home, contract)}
    assert (results["locked.csv"].status, results["locked.csv"].reason) == (
        "rejected",
        "unreadable_file",
    )
    assert "read permission" in results["locked.csv"].message
    assert results["open.csv"].status == "loaded"


def test_a_file_dated_in_the_future_does_not_stall_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forged (or skewed) future mtime makes a file wait one settling period, no more."""
    monkeypatch.setenv(paths.SETTLE_ENV, "0.5")
    home = tmp_path / "home"
    contract = _warehouses()
    path = _folder(home, contract) / "w.csv"
    path.write_text(HEADER + ROW)
    future = time.time() + 10 * 365 * 86400
    os.utime(path, (future, future))
    started = time.monotonic()
    (result,) = _ingest(home, contract)
    assert result.status == "loaded" and time.monotonic() - started < 5
