"""Watermarks: durable writes, bad files set aside, the reference agent's file read for migration."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from singer._watermark import ReferenceWatermarkError, Watermark, WatermarkStore, read_reference_watermark

WM = Watermark(device=2049, inode=1234567, offset=26474, fingerprint="ab" * 32, fingerprint_bytes=1024, path="/l/a")


def test_save_and_load_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path / "state")
    assert store.load("app/web") is None
    store.save("app/web", WM)
    store.save("app/web", WM)
    assert store.load("app/web") == WM
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["app%2Fweb.json"]


def test_the_scan_fields_round_trip_and_older_files_load_without_them(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    stamped = dataclasses.replace(WM, live_inode=7, last_copy_inode=9, mid_inode=5)
    store.save("s", stamped)
    assert store.load("s") == stamped
    older = {
        k: v for k, v in json.loads(store.path_for("s").read_text()).items() if not k.endswith("inode") or k == "inode"
    }
    store.path_for("s").write_text(json.dumps(older))
    assert store.load("s") == WM


def test_a_crash_before_rename_keeps_the_previous_watermark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = WatermarkStore(tmp_path)
    store.save("s", WM)

    def crash(src: object, dst: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save("s", Watermark(**{**WM.__dict__, "offset": 99}))
    monkeypatch.undo()
    assert store.load("s") == WM


def test_fsyncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    WatermarkStore(tmp_path).save("s", WM)
    assert len(synced) == 2


def test_unreadable_watermark_is_set_aside(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    store.path_for("s").write_text("{not json")
    assert store.load("s") is None
    assert store.path_for("s").with_suffix(".bad").read_text() == "{not json"


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
