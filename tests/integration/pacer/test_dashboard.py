"""The brokers' dashboard, rendered by headless Chromium: queues, partitions, owners, epochs, counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pacer import Job
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install-system-packages installs it)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=90,
        check=True,
    )
    return done.stdout.decode()


def test_dashboard_shows_queues_owners_and_counts(start_broker: Callable[..., BrokerProcess], tmp_path: Path) -> None:
    first, second = start_broker(), start_broker()
    client = Client([first.url, second.url], admin_token=ADMIN_TOKEN)
    client.create_queue("emails", partitions=4, lease=timedelta(seconds=60))
    client.create_queue("thumbnails", partitions=1, max_jobs_per_second=0)
    wait_for_owners(client, "emails", {first.url, second.url})
    client.enqueue("emails", [Job(f"mail-{i}".encode(), priority=1 + i % 3) for i in range(30)])
    client.enqueue("thumbnails", [b"img-1", b"img-2"])
    leases = []
    deadline = time.monotonic() + 30
    while len(leases) < 12 and time.monotonic() < deadline:  # owners refill after the doorbell, off the request
        leases += client.dequeue("emails", 12 - len(leases))
        time.sleep(0.05)
    assert len(leases) == 12
    client.ack("emails", succeeded=leases[:8], failed=[lease for lease in leases[8:10]])

    dom = chromium(tmp_path, "--dump-dom", f"{first.url}/")
    assert "<h1>Pacer</h1>" in dom
    for partition in range(4):
        assert f'data-partition="{partition}"' in dom
    assert first.url in dom and second.url in dom  # both owners are listed
    assert "thumbnails" in dom and "paused" in dom
    emails = dom[dom.index('data-queue="emails"') :]
    total = emails[emails.index('class="total"') :]
    cells = [cell.split("</td>")[0] for cell in total.split("<td>")[5:9]]
    assert cells == ["20", "2", "8", "0"], cells  # pending (18 + 2 to retry), in progress, succeeded, failed

    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,760", "--hide-scrollbars", f"{first.url}/")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    if os.environ.get("PACER_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["PACER_DASHBOARD_SCREENSHOT"])
