"""Brokers killed and paused while they hold jobs: nothing is lost, and a stale owner is fenced."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import timedelta

from pacer import Job, JobState
from pacer import _wire as wire
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess, http
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners
from tests.integration.pacer.test_broker_api import drain


def test_sigkill_of_a_broker_with_jobs_buffered_and_in_flight_loses_nothing(
    start_broker: Callable[..., BrokerProcess],
) -> None:
    victim, survivor = start_broker(), start_broker()
    client = Client([victim.url, survivor.url], admin_token=ADMIN_TOKEN, retry_for=60)
    client.create_queue("work", partitions=4, lease=timedelta(seconds=3))
    before = wait_for_owners(client, "work", {victim.url, survivor.url})
    # One call fills one partition: eight calls reach every partition, whichever broker takes each.
    descriptors = [d for c in range(8) for d in client.enqueue("work", [Job(f"{c}-{i}".encode()) for i in range(5)])]
    # Leased and never acked, from both brokers: these must come back when their leases expire.
    status, answer = http(f"{victim.url}/v1/queues/work/dequeue", "POST", json.dumps({"limit": 5}).encode())
    assert status == 200 and len(answer["jobs"]) == 5
    assert len(drain(client, "work", 5)) == 5
    deadline = time.monotonic() + 10
    while victim.metric("pacer_broker_buffered_jobs") == 0:  # the rest goes to the buffers
        assert time.monotonic() < deadline, "the victim never buffered jobs"
        time.sleep(0.1)

    victim.kill()
    after = wait_for_owners(client, "work", {survivor.url})
    moved = [p for p in before if p.owner == victim.url]
    assert all(after[p.partition].epoch > p.epoch for p in moved)

    deadline = time.monotonic() + 60
    while client.count("work", JobState.SUCCEEDED) < 40 and time.monotonic() < deadline:
        leases = client.dequeue("work", 20)
        if leases:
            client.ack("work", succeeded=leases)
        else:
            time.sleep(0.2)
    states = {d: info.state for d, info in client.lookup(descriptors).items()}
    assert len(states) == 40 and set(states.values()) == {JobState.SUCCEEDED}


def test_a_paused_owner_is_fenced_after_a_takeover(start_broker: Callable[..., BrokerProcess]) -> None:
    stale, fresh = start_broker(), start_broker()
    client = Client([stale.url, fresh.url], admin_token=ADMIN_TOKEN, retry_for=60)
    client.create_queue("split", partitions=4, lease=timedelta(seconds=60))
    before = wait_for_owners(client, "split", {stale.url, fresh.url})
    for c in range(8):  # one call fills one partition: eight reach every partition
        client.enqueue("split", [Job(f"{c}-{i}".encode()) for i in range(2)])
    status, answer = http(f"{stale.url}/v1/queues/split/dequeue", "POST", json.dumps({"limit": 2}).encode())
    assert status == 200 and len(answer["jobs"]) == 2
    held = answer["jobs"][0]

    stale.signal(signal.SIGSTOP)
    after = wait_for_owners(client, "split", {fresh.url})
    assert all(after[p.partition].epoch > p.epoch for p in before if p.owner == stale.url)
    stale.signal(signal.SIGCONT)

    # The old owner answers at once, before or after it hears of the new assignment: never a success.
    ack = {"succeeded": [{"descriptor": held["descriptor"], "claim": held["claim"]}]}
    status, answer = http(f"{stale.url}/v1/queues/split/ack", "POST", json.dumps(ack).encode())
    assert status == 409 and answer["error"] in {"fenced", "not_owner"}, answer
    status, answer = http(f"{stale.url}/v1/queues/split/dequeue", "POST", json.dumps({"limit": 5}).encode())
    assert status == 409 or answer["jobs"] == [], answer
    refused = stale.metric("pacer_broker_fenced_total") + stale.metric("pacer_broker_not_owner_total")
    assert refused >= 1

    info = next(iter(client.lookup([held["descriptor"]]).values()))
    assert info.state is JobState.IN_PROGRESS and info.claim == held["claim"]
    # The worker's lease is still good at the new owner.
    result = client.ack("split", succeeded=[wire.lease_from_json(held)])
    assert result.accepted and not result.rejected


def test_enqueue_succeeds_through_a_broker_that_cannot_reach_kafka(start_broker: Callable[..., BrokerProcess]) -> None:
    owner = start_broker()
    cut_off = start_broker(psc={"psc.discovery.connect": "127.0.0.1:1"})  # no Kafka: no doorbells, no ownership
    admin = Client(owner.url, admin_token=ADMIN_TOKEN)
    admin.create_queue("bells", partitions=2)
    wait_for_owners(admin, "bells", {owner.url})

    descriptors = Client(cut_off.url).enqueue("bells", [b"a", b"b", b"c"])
    assert len(descriptors) == 3
    # The owner heard no doorbell; its periodic refill finds the jobs.
    leases = drain(admin, "bells", 3)
    assert sorted(lease.descriptor for lease in leases) == sorted(descriptors)
