"""``singer dump``: every record with its offsets, as text or JSON."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from singer._thrift import LogMessage, frame
from singer.cli import main


def test_dump_thrift_json_gives_every_field(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    first, second = frame(LogMessage(b"v1", key=b"k1", timestamp_ns=123)), frame(LogMessage(b"v2"))
    path = tmp_path / "a.thrift"
    path.write_bytes(first + second)
    code = main(["dump", "--format", "thrift", "--json", str(path)])
    out = capsysbinary.readouterr().out
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"offset": 0, "next_offset": len(first), "key": base64.b64encode(b"k1").decode(),
         "value": base64.b64encode(b"v1").decode(), "timestamp_ns": 123},
        {"offset": len(first), "next_offset": len(first) + len(second), "key": None,
         "value": base64.b64encode(b"v2").decode(), "timestamp_ns": None},
    ]  # fmt: skip


def test_dump_from_offset_and_torn_tail(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    first, second = frame(LogMessage(b"v1")), frame(LogMessage(b"v2"))
    path = tmp_path / "a.thrift"
    path.write_bytes(first + second + second[:5])
    code = main(["dump", "--format", "thrift", "--json", "--from", str(len(first)), str(path)])
    captured = capsysbinary.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["offset"] for r in records] == [len(first)]
    assert code == 1 and b"incomplete frame" in captured.err


def test_dump_text_prints_lines(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntwo")
    assert main(["dump", str(path)]) == 0
    assert capsysbinary.readouterr().out == b"one\ntwo\n"


def test_dump_names_a_missing_file(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["dump", str(tmp_path / "nope")]) == 2
    assert b"cannot open" in capsysbinary.readouterr().err


def test_dump_reports_a_corrupt_frame(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "a.thrift"
    path.write_bytes(struct.pack(">I", 2**31) + b"x")
    assert main(["dump", "--format", "thrift", str(path)]) == 1
    assert b"claims 2147483648 bytes" in capsysbinary.readouterr().err
