"""Objects written by our code decode with the reference's own Java classes (memq-client 0.2.20)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from memq._format import Compression, Record, build_object, encode_message, iter_object_records
from memq.storage import FileStorage
from tests.integration.memq.reference_java import compile_java, java_command


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> str:
    return compile_java("ReadObject.java", tmp_path_factory.mktemp("reference-classes"))


def _messages(compression: Compression) -> list[bytes]:
    requests = [
        [
            Record(b"plain", timestamp_ms=1_700_000_000_000),
            Record(b"keyed", key=b"key-1", headers=(("trace", b"abc"), ("empty", b"")), message_id=b"id-00001"),
            Record(b"", key=b"k", headers=(("\u00e9t\u00e9", b"\x00\xff"),), message_id=b"id-2", timestamp_ms=-1),
        ],
        [Record(bytes(range(256)) * 400, key=b"big", message_id=b"x" * 255, timestamp_ms=2**62)],
        [Record(f"v{i}".encode(), key=f"k{i}".encode(), timestamp_ms=i) for i in range(50)],
    ]
    return [
        encode_message(
            records,
            compression=compression,
            producer_epoch=1_700_000_000_000,
            request_id=i,
            address=b"\xac\x10\x00\x25",
        )
        for i, records in enumerate(requests)
    ]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.name.lower())
def test_reference_classes_decode_our_object(reader: str, tmp_path: Path, compression: Compression) -> None:
    storage = FileStorage(tmp_path)
    messages = _messages(compression)
    obj = build_object(messages)
    key = storage.object_key("interop", client_request_id=0, server_request_id=1, attempt=0, host="ours")
    storage.put(key, [obj])
    header_size = 8 + 12 * len(messages)
    notification = storage.notification(
        key,
        topic="interop",
        header_size=header_size,
        messages_size=len(obj) - header_size,
        message_count=len(messages),
        attempts=0,
    )
    note_file = tmp_path / "notification.json"
    note_file.write_text(notification.to_json())

    done = subprocess.run(
        java_command(reader, "ReadObject", str(tmp_path / key), str(note_file)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    entries = [line for line in lines if "entry" in line]
    records = [line for line in lines if "index" in line]
    assert lines[-1] == {"records": 54}

    offset = header_size
    for number, (entry, message) in enumerate(zip(entries, messages, strict=True)):
        assert entry == {"entry": number, "offset": offset, "size": len(message)}
        offset += len(message)

    ours = list(iter_object_records(obj))
    assert len(records) == len(ours)
    for theirs, (message_number, index, _header, record) in zip(records, ours, strict=True):
        last = message_number != ours[index + 1][0] if index + 1 < len(ours) else True
        assert theirs == {
            "index": index,
            **({"key": _b64(record.key)} if record.key is not None else {}),
            "value": _b64(record.value),
            "headers": {name: _b64(value) for name, value in sorted(record.headers)},
            "timestamp_ms": record.timestamp_ms,
            **({"message_id": _b64(record.message_id)} if record.message_id is not None else {}),
            "end_of_batch": last,
        }
    assert records[3]["value"] == _b64(bytes(range(256)) * 400)
    assert records[1]["headers"] == {"empty": "", "trace": _b64(b"abc")}
