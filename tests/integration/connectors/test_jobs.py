"""Jobs run as real processes against the real broker: crashes, the Kafka → PSC switch, bad checkpoints and
bad configuration, and records the user function raises on."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.harness import PARTITIONS, ROOT, Harness, stop
from tests.services import Services


@pytest.fixture
def harness(services: Services, new_topic: Callable[..., str], tmp_path: Path) -> Iterator[Harness]:
    yield Harness(
        services.kafka_bootstrap_servers,
        services.psc_discovery_file,
        new_topic(PARTITIONS, prefix="conn-in"),
        new_topic(PARTITIONS, prefix="conn-out"),
        tmp_path,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """The job's Prometheus metrics, by series name with labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_kill_9_at_random_moments_and_inside_checkpoints_keeps_output_exactly_once(harness: Harness) -> None:
    """Three SIGKILLs at random moments while input arrives, one between a checkpoint's file and its
    commit, one between its commit and what follows; each restart uses the same checkpoint store."""
    feeder = threading.Thread(target=harness.produce, args=(6000, 1500.0))
    feeder.start()
    rng = random.Random()
    for _ in range(3):
        proc = harness.start(CONN_INTERVAL="0.3")
        time.sleep(rng.uniform(1.0, 3.0))
        proc.kill()
        proc.wait()
    feeder.join()
    for kill_at in ("put:3", "prune:2"):
        rc, err = harness.run(timeout=60, CONN_INTERVAL="0.3", CONN_KILL_AT=kill_at)
        assert rc == -signal.SIGKILL, err[-2000:]
    harness.produce(300)
    port = free_port()
    proc = harness.start("--metrics-port", str(port), CONN_INTERVAL="0.3")
    expected = harness.expected()
    found = harness.read(harness.out, until=len(harness.produced))
    metrics = scrape(port)
    rc, err = stop(proc)
    assert rc == 0, err[-2000:]
    assert found == expected  # each record once, per-partition order kept, per-key state restored
    job = harness.env["CONN_JOB"]
    assert metrics[f'connectors_records_in_total{{job="{job}"}}'] > 0
    assert metrics[f'connectors_records_out_total{{job="{job}"}}'] > 0
    assert metrics[f'connectors_checkpoint_duration_seconds_count{{job="{job}"}}'] >= 1
    assert f'connectors_checkpoint_age_seconds{{job="{job}"}}' in metrics
    assert f'connectors_lag_records{{job="{job}"}}' in metrics


def test_a_zombie_is_fenced_and_its_output_never_shows(harness: Harness) -> None:
    """SIGSTOP an instance, start a replacement with the same instance number, then SIGCONT the first."""
    harness.produce(2000)
    zombie = harness.start(CONN_INTERVAL="0.3")
    harness.read(harness.out, until=1, timeout=30)
    zombie.send_signal(signal.SIGSTOP)
    harness.produce(1000)
    replacement = harness.start(CONN_INTERVAL="0.3")
    time.sleep(3)
    zombie.send_signal(signal.SIGCONT)
    harness.produce(1000)
    try:
        _, zombie_err = zombie.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        zombie.kill()
        replacement.kill()
        notable = [line for line in zombie.communicate()[1].splitlines() if '"info"' not in line]
        pytest.fail("the zombie kept running:\n" + "\n".join(notable[-20:]))
    assert zombie.returncode == 1, zombie_err[-2000:]
    assert '"fenced"' in zombie_err
    found = harness.read(harness.out, until=len(harness.produced))
    rc, err = stop(replacement)
    assert rc == 0, err[-2000:]
    assert found == harness.expected()


def test_two_instances_share_a_job_and_one_restarts_after_a_kill(harness: Harness) -> None:
    feeder = threading.Thread(target=harness.produce, args=(4000, 1500.0))
    feeder.start()
    first = harness.start("--instance", "0", "--instances", "2", CONN_INTERVAL="0.3")
    second = harness.start("--instance", "1", "--instances", "2", CONN_INTERVAL="0.3")
    time.sleep(1.5)
    second.kill()
    second.wait()
    second = harness.start("--instance", "1", "--instances", "2", CONN_INTERVAL="0.3")
    feeder.join()
    found = harness.read(harness.out, until=len(harness.produced))
    for proc in (first, second):
        rc, err = stop(proc)
        assert rc == 0, err[-2000:]
    assert found == harness.expected()
    assert sorted(p.name for p in harness.checkpoint_dir.parent.iterdir()) == ["i0", "i1"]
    rc, err = harness.run(60, CONN_BOUNDED="1")
    assert rc == 2 and "taken with 2 instances, this run has 1" in err


def test_a_kafka_checkpoint_restores_into_the_psc_source_and_sink(harness: Harness) -> None:
    """The Kafka job dies with a checkpoint prepared and its transaction open; the PSC job resumes from it."""
    harness.produce(3000)
    rc, err = harness.run(timeout=60, CONN_INTERVAL="0.2", CONN_KILL_AT="put:2")
    assert rc == -signal.SIGKILL, err[-2000:]
    assert len(list(harness.checkpoint_dir.glob("chk-*.json"))) >= 1
    harness.produce(1000)
    rc, err = harness.run(timeout=90, CONN_FAMILY="psc", CONN_BOUNDED="1")
    assert rc == 0, err[-2000:]
    assert '"checkpoint_not_committed"' in err and '"restored"' in err  # the open one set aside, the one before used
    assert harness.read(harness.out, until=len(harness.produced)) == harness.expected()
    # and the migrated checkpoint cannot go back to the Kafka connector
    rc, err = harness.run(timeout=60, CONN_BOUNDED="1")
    assert rc == 2
    assert "reverse migration from PSC to Kafka" in err


def test_a_corrupt_newest_checkpoint_is_passed_over_and_all_corrupt_refuses_to_start(harness: Harness) -> None:
    env = {"CONN_GUARANTEE": "at_least_once", "CONN_INTERVAL": "60"}  # checkpoints only when stopped
    for _ in range(2):  # two runs, each ended by SIGTERM with a final checkpoint
        harness.produce(500)
        proc = harness.start(**env)
        harness.read(harness.out, until=len(harness.produced))
        rc, err = stop(proc)
        assert rc == 0, err[-2000:]
    files = sorted(harness.checkpoint_dir.glob("chk-*.json"))
    assert len(files) == 2
    newest = files[-1]
    newest.write_bytes(newest.read_bytes()[:40])
    harness.produce(500)
    expected = harness.expected()

    def complete(found: dict[int, list[bytes]]) -> bool:  # at least once: every record, some maybe twice
        return all(set(values) <= set(found.get(p, [])) for p, values in expected.items())

    proc = harness.start(**env)
    found = harness.read(harness.out, until=0, done=complete)
    rc, err = stop(proc)
    assert rc == 0, err[-2000:]
    assert '"checkpoint_corrupt"' in err and newest.name in err
    assert complete(found)
    for path in harness.checkpoint_dir.glob("chk-*.json"):
        path.write_bytes(b"\x00garbage")
    rc, err = harness.run(60, **env)
    assert rc == 2
    assert "is valid, refusing to start from scratch" in err


def test_checkpoints_in_s3(harness: Harness, services: Services) -> None:
    import boto3

    bucket = f"conn-{uuid.uuid4().hex[:12]}"
    moto_keys = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    env = {"CONN_CHECKPOINTS": f"s3://{bucket}/jobs", "S3_ENDPOINT_URL": services.s3_endpoint_url, **moto_keys}
    harness.produce(900)
    proc = harness.start(**env)
    harness.read(harness.out, until=900)
    rc, err = stop(proc)
    assert rc == 0, err[-2000:]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys and all(k.startswith(f"jobs/{harness.env['CONN_JOB']}/i0/chk-") for k in keys)
    harness.produce(300)
    proc = harness.start(**env)
    found = harness.read(harness.out, until=1200)
    rc, err = stop(proc)
    assert rc == 0, err[-2000:]
    assert '"restored"' in err
    assert found == harness.expected()


def test_bad_job_configuration_is_refused_with_its_reason(harness: Harness) -> None:
    rc, err = harness.run(CONN_INTERVAL="10", CONN_TXN_TIMEOUT="5")
    assert rc == 2 and "transaction_timeout_s=5.0 must exceed the checkpoint interval" in err
    rc, err = harness.run(CONN_ON_ERROR="dead_letter")
    assert rc == 2 and "needs dead_letter_topic" in err
    proc = subprocess.run(
        [sys.executable, "-m", "connectors", "run", "tests.integration.connectors.jobs:missing"],
        cwd=ROOT,
        env=harness.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "has no attribute 'missing'" in proc.stderr
    assert not harness.checkpoint_dir.exists()
    blocker = harness.checkpoint_dir.parent.parent.parent / "a-file"
    blocker.write_bytes(b"")
    rc, err = harness.run(CONN_CHECKPOINTS=f"file:{blocker}")
    assert rc == 2 and "is not writable" in err


def test_records_the_function_raises_on_go_to_the_dead_letter_topic_or_stop_the_job(
    harness: Harness, new_topic: Callable[..., str]
) -> None:
    harness.produce(600)
    dlq = new_topic(1, prefix="conn-dlq")
    rc, err = harness.run(CONN_BOUNDED="1", CONN_FAIL_ON="v300", CONN_ON_ERROR="dead_letter", CONN_DLQ=dlq)
    assert rc == 0, err[-2000:]
    assert harness.read(dlq, until=1) == {0: [b"v300"]}
    assert sum(len(v) for v in harness.read(harness.out, until=599).values()) == 599

    harness.env["CONN_JOB"] += "-stop"
    harness.out = new_topic(PARTITIONS, prefix="conn-out")
    rc, err = harness.run(CONN_BOUNDED="1", CONN_FAIL_ON="v300", CONN_OUT=harness.out)
    assert rc == 1
    assert f"{harness.source} [0] @ 100" in err and "refusing b'v300'" in err
    committed = harness.read(harness.out, until=600, timeout=5)
    assert b"v300|" not in b"".join(v for values in committed.values() for v in values)
