"""Every API operation through two real broker processes, and bad requests answered with clear 4xx."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from pacer import Ack, Checkpoint, InvalidDescriptor, Job, JobState, Lease, QueueNameInvalid, Unauthorized
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess, http
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners


def drain(client: Client, queue: str, wanted: int, timeout: float = 20.0) -> list[Lease]:
    """Dequeue until ``wanted`` jobs are in hand or ``timeout`` passes."""
    leases: list[Lease] = []
    deadline = time.monotonic() + timeout
    while len(leases) < wanted and time.monotonic() < deadline:
        leases += client.dequeue(queue, wanted - len(leases))
        if len(leases) < wanted:
            time.sleep(0.1)
    return leases


def test_api_through_two_brokers(start_broker: Callable[..., BrokerProcess]) -> None:
    first, second = start_broker(), start_broker()
    client = Client([first.url, second.url], admin_token=ADMIN_TOKEN)
    client.create_queue("jobs", partitions=4, lease=timedelta(seconds=30))
    assert "jobs" in client.queue_names()
    infos = wait_for_owners(client, "jobs", {first.url, second.url})
    assert all(info.epoch >= 1 for info in infos)

    # enqueue through either broker; dequeue and ack at the owners
    descriptors = client.enqueue("jobs", [Job(f"job-{i}".encode(), priority=1 + i % 3) for i in range(12)])
    assert len(descriptors) == 12 and client.count("jobs", JobState.PENDING) == 12
    leases = drain(client, "jobs", 12)
    assert sorted(lease.descriptor for lease in leases) == sorted(descriptors)
    done, failed, held = leases[:8], leases[8:10], leases[10:]
    result = client.ack("jobs", succeeded=done, failed=[Ack(lease.descriptor, lease.claim, "no;") for lease in failed])
    assert len(result.accepted) == 10 and not result.rejected
    assert client.ack("jobs", succeeded=[Ack(held[0].descriptor, "99.1")]).rejected == {
        held[0].descriptor: "stale_claim"
    }

    # checkpoint: change the body, then hand the job back
    applied = client.checkpoint("jobs", [Checkpoint(held[0].descriptor, held[0].claim, new_body=b"v2")])
    assert applied == [True]
    client.checkpoint("jobs", [Checkpoint(held[0].descriptor, held[0].claim, move_to_pending=True)])
    info = client.lookup([held[0].descriptor], include_body=True)[held[0].descriptor]
    assert info.state is JobState.PENDING and info.body == b"v2"

    # reads, scan pages, retry and delete
    assert client.count("jobs", JobState.SUCCEEDED) == 8
    assert client.count("jobs", "pending") == 3  # two failed ones have a retry left, one handed back
    page = client.scan("jobs", JobState.SUCCEEDED, limit=5)
    rest = client.scan("jobs", JobState.SUCCEEDED, limit=5, cursor=page.cursor)
    assert len(page.jobs) == 5 and len(rest.jobs) == 3 and rest.cursor is None
    again = drain(client, "jobs", 3)
    client.ack("jobs", failed=[lease for lease in again if lease.body != b"v2"])
    assert client.count("jobs", JobState.FAILED) == 2
    assert client.retry_failed("jobs", attempts=2) == 2
    assert client.delete_jobs("jobs", JobState.PENDING, body_regex="^job-") == 2
    assert client.delete_jobs("jobs", JobState.PENDING, body_regex="x' OR '1'='1") == 0

    # rate limit: 0 pauses the queue at every owner
    client.enqueue("jobs", [b"paused"])
    client.set_rate_limit("jobs", 0)
    time.sleep(2.5)  # brokers re-read queue settings every 2 s
    assert drain(client, "jobs", 1, timeout=1.5) == []
    client.set_rate_limit("jobs", None)
    time.sleep(2.5)
    assert [lease.body for lease in drain(client, "jobs", 1)] == [b"paused"]

    client.delete_queue("jobs")
    assert "jobs" not in client.queue_names()


def test_workers_ack_and_take_their_next_jobs_in_one_request(start_broker: Callable[..., BrokerProcess]) -> None:
    first, second = start_broker(), start_broker()
    client = Client([first.url, second.url], admin_token=ADMIN_TOKEN)
    client.create_queue("loop", partitions=4, lease=timedelta(seconds=30))
    wait_for_owners(client, "loop", {first.url, second.url})
    descriptors = client.enqueue("loop", [f"job-{i}".encode() for i in range(10)])  # one call: one partition
    descriptors += client.enqueue("loop", [b"elsewhere"])  # the next call's partition
    held = drain(client, "loop", 4)
    seen = list(held)
    deadline = time.monotonic() + 20
    while len(seen) < 11:
        assert time.monotonic() < deadline, f"{len(seen)} of 11 jobs seen"
        result, held = client.ack_and_dequeue("loop", 4, succeeded=held)
        assert not result.rejected and len(result.accepted) == len(set(result.accepted))
        seen += held
        if not held:
            time.sleep(0.1)
    result, held = client.ack_and_dequeue("loop", 4, succeeded=held)
    assert held == [] and not result.rejected
    assert sorted(lease.descriptor for lease in seen) == sorted(descriptors)  # each job once
    assert client.count("loop", JobState.SUCCEEDED) == 11
    mixed = client.enqueue("loop", [b"a"]) + client.enqueue("loop", [b"b"])  # two partitions: ack, then dequeue
    leases = drain(client, "loop", 2)
    assert {lease.descriptor.partition for lease in leases} == {d.partition for d in mixed}
    result, more = client.ack_and_dequeue("loop", 4, succeeded=leases)
    assert sorted(result.accepted) == sorted(mixed) and more == []
    assert client.count("loop", JobState.SUCCEEDED) == 13


def test_bad_requests_get_clear_4xx_and_lose_nothing(start_broker: Callable[..., BrokerProcess]) -> None:
    broker = start_broker()
    client = Client(broker.url, admin_token=ADMIN_TOKEN)
    client.create_queue("safe")
    accepted = client.enqueue("safe", [b"kept"])
    url = broker.url

    with pytest.raises(Unauthorized):
        Client(url).create_queue("other")
    with pytest.raises(Unauthorized):
        Client(url, admin_token="wrong").delete_queue("safe")
    with pytest.raises(QueueNameInvalid):
        client.enqueue("Safe;DROP", [b"x"])

    cases = [
        ("POST", "/v1/queues/safe/jobs", b"{not json", 400, "malformed_json"),
        ("POST", "/v1/queues/safe/jobs", json.dumps({"jobs": [{"body": "eA==", "priority": 7}]}).encode(), 400, None),
        ("POST", "/v1/queues/safe/jobs", json.dumps({"jobs": [{"body": "not base64!"}]}).encode(), 400, None),
        ("POST", "/v1/queues/safe/jobs", json.dumps({"jobs": "x"}).encode(), 400, None),
        ("POST", "/v1/queues/UPPER/jobs", json.dumps({"jobs": []}).encode(), 400, "QueueNameInvalid"),
        ("POST", "/v1/queues/" + "a" * 60 + "/jobs", b"{}", 400, "QueueNameInvalid"),
        (
            "POST",
            "/v1/queues/safe/ack",
            json.dumps({"succeeded": [{"descriptor": "safe:q0", "claim": "1.1"}]}).encode(),
            400,
            "InvalidDescriptor",
        ),
        ("POST", "/v1/queues/safe/dequeue", json.dumps({"limit": "ten"}).encode(), 400, None),
        ("POST", "/v1/queues/safe/ack_and_dequeue", json.dumps({"limit": 0}).encode(), 400, None),
        (
            "POST",
            "/v1/queues/safe/ack_and_dequeue",
            json.dumps({"succeeded": [{"descriptor": "safe:q0:p1:x", "claim": "1.1"}], "limit": 1}).encode(),
            400,
            "InvalidDescriptor",
        ),
        ("GET", "/v1/queues/safe/scan?cursor=garbage", None, 400, None),
        ("GET", "/v1/queues/nosuch/count", None, 404, "queue_not_found"),
        ("DELETE", "/v1/queues/safe", None, 401, "unauthorized"),
        ("POST", "/v1/queues/safe/retry_failed", b"{}", 401, "unauthorized"),
        ("GET", "/v1/nowhere", None, 404, "no_route"),
        ("PUT", "/v1/queues/safe/jobs", b"{}", 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        got, answer = http(url + path, method, body)
        assert got == status, (path, answer)
        assert answer["message"], answer
        if code:
            assert answer["error"] == code, answer
    big = json.dumps({"jobs": [{"body": "A" * (2 << 20)}]}).encode()
    got, answer = http(url + "/v1/queues/safe/jobs", "POST", big)
    assert got == 400 and "body" in answer["message"]
    with pytest.raises(InvalidDescriptor):
        client.lookup(["safe:q0:p1"])

    assert client.count("safe", JobState.PENDING) == 1
    assert client.lookup(accepted)[accepted[0]].state is JobState.PENDING
