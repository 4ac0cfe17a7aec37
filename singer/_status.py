"""``singer status``: each stream's files, watermark and lag in bytes, from the configuration and the state
directory (so it works whether or not the agent runs)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from psc.common.settings import SettingsError
from singer._config import load_agent, load_streams
from singer._files import bytes_after, list_stream, stream_directories
from singer._stream import stream_key
from singer._watermark import WatermarkStore


def collect(config_dir: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    agent = load_agent(config_dir)
    assert agent.state_dir is not None
    store = WatermarkStore(agent.state_dir)
    snapshot = load_streams(config_dir)
    rows = []
    for name, settings in snapshot.streams.items():
        for directory in stream_directories(settings.dir):
            key = stream_key(name, directory)
            files = list_stream(directory, re.compile(settings.pattern))
            mark = store.load(key)
            lag = bytes_after(files, mark)
            rows.append(
                {
                    "stream": key,
                    "topic_uri": settings.topic_uri,
                    "files": [{"path": str(f.path), "size": f.size, "inode": f.inode} for f in files],
                    "watermark": None if mark is None else {"path": mark.path, "offset": mark.offset},
                    "lag_bytes": lag,
                }
            )
    return rows, snapshot.errors


def print_status(config_dir: Path, as_json: bool = False) -> int:
    try:
        rows, errors = collect(config_dir)
    except SettingsError as exc:
        print(f"singer status: {exc}", file=sys.stderr)
        return 2
    if as_json:
        for row in rows:
            print(json.dumps(row))
    else:
        for row in rows:
            mark = row["watermark"]
            where = "no watermark" if mark is None else f"{mark['path']} @ {mark['offset']}"
            print(f"{row['stream']}  {where}  lag {row['lag_bytes']} B  ({len(row['files'])} files)")
            for f in row["files"]:
                print(f"    {f['path']}  {f['size']} B")
    for name, problems in errors.items():
        for problem in problems:
            print(f"singer status: stream {name}: {problem}", file=sys.stderr)
    return 1 if errors else 0
