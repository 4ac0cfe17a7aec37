"""Pacer brokers and workers as real processes, so tests can kill, pause and resume them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pacer", *args],
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TOOLKIT_LOG_FORMAT": "json"},
        )

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in {self.log} after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


class BrokerProcess(Process):
    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        path = workdir / f"{name}.toml"
        path.write_text(toml(config))
        super().__init__(["broker", "--config", str(path)], workdir / f"{name}.log")
        self.url = self.wait_for(r"listening on (http://\S+)")[1]

    def metric(self, name: str) -> float:
        """The sum of a metric's samples in the broker's /metrics."""
        text = urllib.request.urlopen(f"{self.url}/metrics", timeout=5).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def toml(config: dict[str, Any]) -> str:
    """A flat config with at most one level of tables, as TOML (JSON strings and lists are TOML too)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items() if not isinstance(value, dict)]
    for key, table in config.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def http(url: str, method: str = "GET", body: bytes | None = None, token: str | None = None) -> tuple[int, Any]:
    """Status and JSON answer of one raw request."""
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
