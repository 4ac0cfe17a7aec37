"""`memq inspect [--json] FILE|s3://bucket/key`: decode a stored object, message by message, with ranged reads.

The `memq` command calls `main(argv)` with the arguments after `inspect`; `add_inspect_command(subparsers)`
adds the same command to another argparse parser. Exit status: 0 if every producer message decoded, 1 if some
did not (each failure is reported with its byte offset and reading goes on where the index allows), 2 for bad
arguments or an object that cannot be read at all.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from memq._errors import FormatError, MemqError, StorageError
from memq._format import MessageHeader, Record, decode_message, parse_message_header, parse_object_index
from memq.storage import FileStorage, StorageHandler, open_storage

__all__ = ["add_inspect_command", "inspect_object", "main"]

_INDEX_HEAD = 8


def add_inspect_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `inspect` to an argparse subparsers object; the parsed namespace's `func(args)` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="decode a stored object",
        description="Decode a stored MemQ object: its index, producer messages and records.",
    )
    _arguments(parser)
    parser.set_defaults(func=_run)
    return parser


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="FILE|s3://bucket/key", help="a local object file or an S3 object URL")
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per record (request, index, key, value, headers, timestamp_ms, message_id; "
        "bytes in base64), then a summary line",
    )
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("S3_ENDPOINT_URL"),
        help="S3 endpoint for s3:// objects (default: $S3_ENDPOINT_URL, else AWS's)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memq inspect", description="Decode a stored MemQ object.")
    _arguments(parser)
    return _run(parser.parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    try:
        storage, key = _open(args.object, args.endpoint_url)
    except (StorageError, ValueError) as exc:
        print(f"memq inspect: {exc}", file=sys.stderr)
        return 2
    try:
        report = inspect_object(storage, key)
        _print(report, args.object, json_lines=args.json, out=sys.stdout)
    except MemqError as exc:
        print(f"memq inspect: {args.object}: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()
    for error in report.errors:
        print(f"memq inspect: {args.object}: {error['reason']} (at byte offset {error['offset']})", file=sys.stderr)
    return 1 if report.errors else 0


def _open(target: str, endpoint_url: str | None) -> tuple[StorageHandler, str]:
    if target.startswith("s3://"):
        parts = urlsplit(target)
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise ValueError(f"{target!r} is not an S3 object URL: s3://bucket/key")
        options = {"endpoint_url": endpoint_url} if endpoint_url else {}
        return open_storage(f"s3://{parts.netloc}", **options), key
    path = Path(target.removeprefix("file://")).resolve()
    if not path.is_file():
        raise ValueError(f"{target!r}: no such file")
    return FileStorage(path.parent), path.name


@dataclass
class MessageReport:
    index: int
    offset: int
    size: int
    header: MessageHeader | None
    records: list[Record]
    first_record: int


@dataclass
class Report:
    size: int
    header_size: int
    messages: list[MessageReport] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return sum(len(message.records) for message in self.messages)


def inspect_object(storage: StorageHandler, key: str) -> Report:
    """Decode the object at `key`, one producer message in memory at a time (MemqError if its index is bad)."""
    size = storage.size(key)
    head = storage.read(key, 0, _INDEX_HEAD)
    if len(head) < _INDEX_HEAD:
        raise FormatError(f"object of {len(head)} bytes is too short for an index", len(head))
    header_size = 4 + int.from_bytes(head[:4], "big", signed=True)
    if not _INDEX_HEAD <= header_size <= size:
        raise FormatError(f"index length {header_size - 4} does not fit an object of {size} bytes", 0)
    index = parse_object_index(storage.read(key, 0, header_size), size)
    report = Report(size=size, header_size=header_size)
    report.messages.extend(_messages(storage, key, index.entries, report))
    return report


def _messages(storage: StorageHandler, key: str, entries: Sequence[Any], report: Report) -> Iterator[MessageReport]:
    first_record = 0
    for entry in entries:
        data = storage.read(key, entry.offset, entry.size)
        header: MessageHeader | None = None
        records: list[Record] = []
        try:
            if len(data) < entry.size:
                raise FormatError(f"object ends {entry.size - len(data)} bytes before the message's end", len(data))
            header = parse_message_header(data, with_body=False)
            header, records = decode_message(data)
            if header.size != entry.size:
                raise FormatError(f"message of {header.size} bytes where the index has {entry.size}", 0)
        except FormatError as exc:
            report.errors.append({"request": entry.id, "offset": entry.offset + exc.offset, "reason": exc.reason})
        yield MessageReport(entry.id, entry.offset, entry.size, header, records, first_record)
        # Records keep their object-wide index past a bad message when its header still gives the count.
        first_record += len(records) if records or header is None else header.record_count


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _print(report: Report, target: str, *, json_lines: bool, out: TextIO) -> None:
    for message in report.messages:
        if not json_lines:
            out.write(_describe(message) + "\n")
        for i, record in enumerate(message.records):
            if json_lines:
                line = {
                    "request": message.index,
                    "index": message.first_record + i,
                    "key": _b64(record.key),
                    "value": _b64(record.value),
                    "headers": {name: _b64(value) for name, value in record.headers},
                    "timestamp_ms": record.timestamp_ms,
                    "message_id": _b64(record.message_id),
                }
                out.write(json.dumps(line) + "\n")
            else:
                out.write(f"  [{message.first_record + i}] {_show(record)}\n")
    summary = {
        "object": target,
        "size": report.size,
        "header_size": report.header_size,
        "requests": len(report.messages),
        "records": report.record_count,
        "errors": report.errors,
    }
    if json_lines:
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        out.write(
            f"{target}: {report.size} bytes, index {report.header_size} bytes, {len(report.messages)} requests, "
            f"{report.record_count} records, {len(report.errors)} errors\n"
        )


def _describe(message: MessageReport) -> str:
    where = f"request {message.index} at byte {message.offset} ({message.size} bytes)"
    header = message.header
    if header is None:
        return f"{where}: unreadable header"
    address = ".".join(str(b) for b in header.address) if len(header.address) == 4 else header.address.hex()
    return (
        f"{where}: {header.compression.name.lower()}, {header.record_count} records, producer {address} "
        f"epoch {header.producer_epoch} request id {header.request_id}, crc {header.crc:#010x}"
    )


def _show(record: Record) -> str:
    headers = {name: value for name, value in record.headers}
    message_id = record.message_id.hex() if record.message_id is not None else None
    return (
        f"key={record.key!r} value={record.value[:80]!r}{'...' if len(record.value) > 80 else ''} "
        f"headers={headers} timestamp_ms={record.timestamp_ms} message_id={message_id}"
    )
