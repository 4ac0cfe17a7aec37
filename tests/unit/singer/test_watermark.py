"""Watermarks: durable writes, bad files set aside, the reference agent's file read for migration."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from singer._watermark import (
    SLOT_BYTES,
    ReferenceWatermarkError,
    Watermark,
    WatermarkStore,
    read_reference_watermark,
)

WM = Watermark(device=2049, inode=1234567, offset=26474, fingerprint="ab" * 32, fingerprint_bytes=1024, path="/l/a")


def test_save_and_load_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path / "state")
    assert store.load("app/web") is None
    store.save("app/web", WM)
    store.save("app/web", WM)
    assert WatermarkStore(tmp_path / "state").load("app/web") == WM
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["app%2Fweb.wm"]


def _moved(offset: int) -> Watermark:
    return dataclasses.replace(WM, offset=offset)


def test_the_newest_write_wins_and_a_reloaded_store_goes_on_from_it(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    for offset in range(1, 6):
        store.save("s", _moved(offset))
        assert WatermarkStore(tmp_path).load("s") == _moved(offset)
    store.close("s")
    again = WatermarkStore(tmp_path)
    assert again.load("s") == _moved(5)
    again.save("s", _moved(6))  # into the slot not holding 5: both slots are read back, the newest wins
    again.save("s", _moved(7))
    assert WatermarkStore(tmp_path).load("s") == _moved(7)
    assert store.path_for("s").stat().st_size == 2 * SLOT_BYTES


def test_the_scan_fields_round_trip_and_older_files_load_without_them(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    stamped = dataclasses.replace(WM, live_inode=7, last_copy_inode=9, mid_inode=5)
    store.save("s", stamped)
    assert WatermarkStore(tmp_path).load("s") == stamped
    older = {k: v for k, v in dataclasses.asdict(WM).items() if not k.endswith("inode") or k == "inode"}
    store.remove("s")
    legacy = store.path_for("s").with_suffix(".json")  # a watermark of the earlier format: one JSON object
    legacy.write_text(json.dumps(older))
    assert store.load("s") == WM
    store.save("s", _moved(1))  # replaces it
    assert WatermarkStore(tmp_path).load("s") == _moved(1) and not legacy.exists()


def test_a_write_torn_by_a_crash_keeps_the_previous_watermark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = WatermarkStore(tmp_path)
    store.save("s", _moved(1))
    store.save("s", _moved(2))
    real = os.pwrite

    def torn(fd: int, data: bytes, offset: int) -> int:
        real(fd, data[:60], offset)  # the start of the new line over the rest of the old one
        raise OSError("power lost")

    monkeypatch.setattr(os, "pwrite", torn)
    with pytest.raises(OSError):
        store.save("s", _moved(3))
    monkeypatch.undo()
    assert WatermarkStore(tmp_path).load("s") == _moved(2)
    store.save("s", _moved(4))  # the torn slot is written again, the other one kept
    assert WatermarkStore(tmp_path).load("s") == _moved(4)


def test_a_crash_before_the_first_file_is_renamed_leaves_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        WatermarkStore(tmp_path).save("s", WM)
    monkeypatch.undo()
    assert WatermarkStore(tmp_path).load("s") is None


def test_the_file_is_made_with_fsyncs_and_written_with_one_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def fsync(fd: int) -> None:
        synced.append("fsync")
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        synced.append("fdatasync")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    store = WatermarkStore(tmp_path)
    store.save("s", WM)
    assert synced == ["fsync", "fsync"]  # the file, then the directory holding its new name
    store.save("s", _moved(1))
    assert synced == ["fsync", "fsync", "fdatasync"]


def test_unreadable_watermark_is_set_aside(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    store.path_for("s").write_text("{not json")
    assert store.load("s") is None
    assert store.path_for("s").with_suffix(".bad").read_text() == "{not json"
    store.path_for("s").with_suffix(".json").write_text("{not json either")
    assert store.load("s") is None
    assert store.path_for("s").with_suffix(".bad").read_text() == "{not json either"


def test_reads_the_reference_agent_watermark(tmp_path: Path) -> None:
    path = tmp_path / ".app.app.log"
    path.write_text('{"1":{"rec":{"1":{"i64":1234567}}},"2":{"i64":26474}}')
    assert read_reference_watermark(path) == (1234567, 26474)


@pytest.mark.parametrize(
    "text", ['{"1":{"i64":1},"2":{"i64":2}}', "garbage", '{"1":{"rec":{"1":{"i64":"x"}}},"2":{"i64":2}}']
)
def test_bad_reference_watermark_is_named(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".w"
    path.write_text(text)
    with pytest.raises(ReferenceWatermarkError, match=str(path)):
        read_reference_watermark(path)
