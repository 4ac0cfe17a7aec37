"""Input parsed once at the edge: broker config, descriptors, wire forms and the rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pacer import Ack, Checkpoint, Descriptor, InvalidArgument, Job, JobState
from pacer import _wire as wire
from pacer._ratelimit import TokenBucket
from pacer.broker import BrokerConfig, control_partition
from pacer.storage import open_store


def test_broker_config_loads_and_names_bad_keys(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('storage = "sqlite:///tmp/x.db"\ncontrol_topic = "t"\ncontrol_partitions = 4\n[psc]\n"a.b" = "c"\n')
    config = BrokerConfig.load(good)
    assert config.storage == ["sqlite:///tmp/x.db"] and config.psc == {"a.b": "c"}
    cases = {
        'storage = "x"\ncontrol_topic = "t"\ncontrol_partitions = 4\nbuffer = 3\n': "unknown keys",
        'storage = "x"\ncontrol_topic = "t"\ncontrol_partitions = "4"\n': "control_partitions",
        'storage = "x"\ncontrol_topic = "t"\ncontrol_partitions = 0\n': "control_partitions",
        'storage = "x"\ncontrol_partitions = 4\n': "control_topic",
        "storage = [\n": "config",
    }
    for text, named in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(InvalidArgument, match=named):
            BrokerConfig.load(bad)


def test_control_partitions_spread_a_queue() -> None:
    owners = {control_partition("emails", p, 4) for p in range(4)}
    assert owners == {0, 1, 2, 3}


def test_storage_urls_are_checked() -> None:
    for url in ("postgres://x/y", "sqlite://relative.db", "mysql://host/bad-name!"):
        with pytest.raises(InvalidArgument):
            open_store(url)


def test_wire_forms_round_trip() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    job = Job(b"\x00body", priority=2, run_after=at, attempts=5, custom_status="s", key="k")
    assert wire.job_from_json(wire.job_to_json(job)) == job
    descriptor = Descriptor("q", 1, 2, 3)
    ack = Ack(descriptor, "1.2", "done", timedelta(milliseconds=1500))
    assert wire.ack_from_json(wire.ack_to_json(ack), "q") == ack
    checkpoint = Checkpoint(descriptor, "1.2", extend_lease=timedelta(seconds=3), new_body=b"b", attempts_allowed=4)
    assert wire.checkpoint_from_json(wire.checkpoint_to_json(checkpoint), "q") == checkpoint
    with pytest.raises(InvalidArgument, match="'priority'"):
        wire.job_from_json({"body": "eA==", "priority": True})
    with pytest.raises(InvalidArgument, match="'body' is required"):
        wire.job_from_json({})
    with pytest.raises(InvalidArgument, match="time zone"):
        Job(b"x", run_after=datetime(2030, 1, 1))
    assert JobState.parse("in_progress") is JobState.IN_PROGRESS


def test_token_bucket_charges_jobs_handed_out() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert bucket.take(5) == 2
    assert bucket.take(1) == 0
    now[0] += 0.5
    assert bucket.take(5) == 1
    bucket.give_back(1)
    assert bucket.take(5) == 1
    bucket.set_rate(0)
    now[0] += 10
    assert bucket.take(1) == 0
    bucket.set_rate(None)
    assert bucket.take(100) == 100
