from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import pytest

from memq._format import Compression, Record, build_object, encode_message
from memq._inspect import add_inspect_command, main
from tests.unit.memq.vectors import vector


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _object(*messages: list[Record]) -> bytes:
    return build_object(
        [
            encode_message(records, compression=Compression.GZIP, producer_epoch=5, request_id=i, address=b"\n\0\0\1")
            for i, records in enumerate(messages)
        ]
    )


def test_json_lines_of_the_reference_vector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _write(tmp_path / "object", vector("batch-uncompressed.b64"))
    assert main(["--json", target]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records, summary = lines[:-1], lines[-1]["summary"]
    assert [(r["request"], r["index"]) for r in records] == [(0, 0), (0, 1), (1, 2), (1, 3)]
    first = records[0]
    assert set(first) == {"request", "index", "key", "value", "headers", "timestamp_ms", "message_id"}
    assert first["key"] is None
    assert base64.b64decode(first["value"]) == b"test1231231"
    assert first["headers"] == {"test": base64.b64encode(b"value").decode()}
    assert first["timestamp_ms"] == 1612391939395
    assert base64.b64decode(first["message_id"]) == bytes(8)
    assert summary == {"object": target, "size": 324, "header_size": 32, "requests": 2, "records": 4, "errors": []}


def test_text_output_describes_each_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _write(tmp_path / "o", _object([Record(b"v1", key=b"k1", message_id=b"\x01\x02")]))
    assert main([target]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("request 0 at byte 20 (") and "gzip, 1 records, producer 10.0.0.1" in out[0]
    assert out[1] == "  [0] key=b'k1' value=b'v1' headers={} timestamp_ms=0 message_id=0102"
    assert out[2].endswith("1 requests, 1 records, 0 errors")


def test_a_corrupt_request_is_reported_and_the_rest_still_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = bytearray(_object([Record(b"a")], [Record(b"b"), Record(b"c")], [Record(b"d")]))
    second = int.from_bytes(obj[24:28], "big")
    obj[second + 41] ^= 0xFF
    target = _write(tmp_path / "o", bytes(obj))
    assert main(["--json", target]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [(r["request"], r["index"], base64.b64decode(r["value"])) for r in lines[:-1]] == [
        (0, 0, b"a"),
        (2, 3, b"d"),
    ]
    errors = lines[-1]["summary"]["errors"]
    assert errors == [{"request": 1, "offset": second, "reason": errors[0]["reason"]}]
    assert "CRC32 mismatch" in errors[0]["reason"]
    assert f"at byte offset {second}" in captured.err


@pytest.mark.parametrize(
    ("content", "argv_tail", "message"),
    [
        (None, ["/nonexistent/object"], "no such file"),
        (None, ["s3://bucket-only"], "not an S3 object URL"),
        (b"\x00\x00", [], "too short for an index"),
        (b"\x00\x00\x10\x00" + bytes(20), [], "does not fit an object"),
    ],
)
def test_unreadable_input_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, argv_tail: list[str], message: str
) -> None:
    argv = [_write(tmp_path / "o", content)] if content is not None else argv_tail
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_add_inspect_command_plugs_into_another_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="memq")
    add_inspect_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["inspect", "--json", _write(tmp_path / "o", vector("batch-gzip.b64"))])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]["records"] == 6
