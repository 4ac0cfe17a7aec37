"""``singer run | status | dump``: the agent's command line."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from singer._records import Reader
from singer._text import TextReader
from singer._thrift import ThriftReader


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="singer", description="Ships log files to topic URIs through PSC.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGTERM or SIGINT")
    run.add_argument("--config", type=Path, required=True, help="directory with singer.toml and conf.d/*.toml")
    status = sub.add_parser("status", help="streams, files, watermarks and lag in bytes")
    status.add_argument("--config", type=Path, required=True, help="the agent's configuration directory")
    status.add_argument("--json", action="store_true", help="one JSON object per stream")
    dump = sub.add_parser("dump", help="print the records of a log file")
    dump.add_argument("--format", choices=("text", "thrift"), default="text")
    dump.add_argument("--from", dest="offset", type=int, default=0, metavar="OFFSET", help="start at this byte")
    dump.add_argument("--json", action="store_true", help="one JSON object per record")
    dump.add_argument("--max-message-bytes", type=int, default=1_000_000, help="larger records are cut or dropped")
    dump.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        return dump_file(args.file, args.format, args.offset, args.json, args.max_message_bytes)
    if args.command == "status":
        from singer._status import print_status

        return print_status(args.config, as_json=args.json)
    from singer._agent import run_agent

    return run_agent(args.config)


def dump_file(path: Path, fmt: str, offset: int, as_json: bool, max_message_bytes: int) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        print(f"singer dump: cannot open {path}: {exc.strerror}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    try:
        reader: Reader
        if fmt == "thrift":
            reader = ThriftReader(fd, offset, max_message_bytes=max_message_bytes)
        else:
            reader = TextReader(fd, offset, max_message_bytes=max_message_bytes)
        start = offset
        while True:
            records = list(reader.read())
            if reader.eof and fmt == "text":
                records += reader.finish()  # the file is taken as complete: an unterminated line is printed
            for record in records:
                if as_json:
                    line = json.dumps(
                        {
                            "offset": start,
                            "next_offset": record.next_offset,
                            "key": None if record.key is None else base64.b64encode(record.key).decode(),
                            "value": base64.b64encode(record.value).decode(),
                            "timestamp_ns": record.timestamp_ns,
                        }
                    )
                    out.write(line.encode() + b"\n")
                else:
                    out.write(record.value if record.value.endswith(b"\n") else record.value + b"\n")
                start = record.next_offset
            if reader.eof or reader.error is not None:
                break
        out.flush()
        problems = []
        if reader.error is not None:
            problems.append(reader.error)
        elif reader.held_bytes:
            problems.append(f"{reader.held_bytes} bytes at offset {reader.position} are an incomplete frame")
        if reader.stats.truncated:
            problems.append(f"{reader.stats.truncated} records cut to {max_message_bytes} bytes")
        if reader.stats.dropped:
            problems.append(f"{reader.stats.dropped} records over {max_message_bytes} bytes left out")
        for problem in problems:
            print(f"singer dump: {path}: {problem}", file=sys.stderr)
        return 1 if reader.error is not None or reader.held_bytes else 0
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
