"""A framed thrift log written by Apache Thrift's own runtime, as the reference logger writes it.

The reference logger serializes each ``LogMessage`` with TBinaryProtocol into a TFramedTransport and flushes
after every message, so each record is its own frame. Here Apache Thrift's Python runtime does the same from
the IDL's field ids and types (1 key binary, 2 message binary, 3 timestampInNanos i64, 4 checksum i64,
5 loggingAuditHeaders struct), and ``singer dump --json`` must give back every record exactly.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from pathlib import Path
from typing import Any

import pytest
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TType
from thrift.transport import TTransport

from singer._thrift import LogMessage, frame
from singer.cli import main


def write_log_message(proto: Any, msg: dict[str, Any]) -> None:
    """What the code generated from the IDL does: set fields in id order, unset optionals left out."""
    proto.writeStructBegin("LogMessage")
    if msg["key"] is not None:
        proto.writeFieldBegin("key", TType.STRING, 1)
        proto.writeBinary(msg["key"])
        proto.writeFieldEnd()
    proto.writeFieldBegin("message", TType.STRING, 2)
    proto.writeBinary(msg["message"])
    proto.writeFieldEnd()
    if msg["ts"] is not None:
        proto.writeFieldBegin("timestampInNanos", TType.I64, 3)
        proto.writeI64(msg["ts"])
        proto.writeFieldEnd()
    if msg["checksum"] is not None:
        proto.writeFieldBegin("checksum", TType.I64, 4)
        proto.writeI64(msg["checksum"])
        proto.writeFieldEnd()
    if msg["audit"]:
        proto.writeFieldBegin("loggingAuditHeaders", TType.STRUCT, 5)
        proto.writeStructBegin("LoggingAuditHeaders")
        for fid, name, ttype, value in (
            (1, "host", TType.STRING, "host-1"), (2, "logName", TType.STRING, "app"), (3, "pid", TType.I32, 4242),
            (4, "session", TType.I64, 1 << 40), (5, "logSeqNumInSession", TType.I32, msg["seq"]),
            (6, "timestamp", TType.I64, 1_700_000_000_000), (7, "tracked", TType.BOOL, True),
        ):  # fmt: skip
            proto.writeFieldBegin(name, ttype, fid)
            {TType.STRING: proto.writeString, TType.I32: proto.writeI32, TType.I64: proto.writeI64,
             TType.BOOL: proto.writeBool}[ttype](value)  # fmt: skip
            proto.writeFieldEnd()
        proto.writeFieldStop()
        proto.writeStructEnd()
        proto.writeFieldEnd()
    proto.writeFieldStop()
    proto.writeStructEnd()


def reference_log(messages: list[dict[str, Any]]) -> bytes:
    sink = TTransport.TMemoryBuffer()
    framed = TTransport.TFramedTransport(sink)
    proto = TBinaryProtocol.TBinaryProtocol(framed)
    for msg in messages:
        write_log_message(proto, msg)
        framed.flush()  # one frame per message, as the reference encoder flushes after each
    return bytes(sink.getvalue())


def sample(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for seq in range(n):
        message = rng.randbytes(rng.choice([0, 1, 10, 300, 5000]))
        out.append({
            "key": None if seq % 3 == 0 else rng.randbytes(rng.randrange(0, 20)),
            "message": message,
            "ts": None if seq % 5 == 0 else rng.randrange(-(2**63), 2**63),
            "checksum": zlib.crc32(message) if seq % 2 else None,
            "audit": seq % 4 == 1,
            "seq": seq,
        })  # fmt: skip
    return out


def test_dump_json_gives_every_record_of_a_reference_log_exactly(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    messages = sample(200)
    data = reference_log(messages)
    path = tmp_path / "ref.thrift"
    path.write_bytes(data)
    assert main(["dump", "--format", "thrift", "--json", str(path)]) == 0
    records = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert len(records) == len(messages)
    offset = 0
    for record, msg in zip(records, messages, strict=True):
        size = int.from_bytes(data[offset : offset + 4], "big")
        expected = {
            "offset": offset,
            "next_offset": offset + 4 + size,
            "key": None if msg["key"] is None else base64.b64encode(msg["key"]).decode(),
            "value": base64.b64encode(msg["message"]).decode(),
            "timestamp_ns": msg["ts"],
        }
        assert record == expected
        offset += 4 + size
    assert offset == len(data)


def test_our_encoder_writes_the_same_bytes_as_apache_thrift() -> None:
    messages = [m for m in sample(60) if not m["audit"]]
    ours = b"".join(
        frame(LogMessage(m["message"], key=m["key"], timestamp_ns=m["ts"], checksum=m["checksum"])) for m in messages
    )
    assert ours == reference_log(messages)
