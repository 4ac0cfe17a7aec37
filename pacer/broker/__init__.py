"""The dequeue broker service: ``pacer broker --config FILE``."""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from typing import Any

from pacer.broker._broker import Broker
from pacer.broker._config import BrokerConfig
from pacer.broker._http import Api, bind, handler_class
from pacer.broker._kafka import Doorbell, Membership, control_partition
from pacer.storage import open_store
from psc.common.log import configure_logging, get_logger
from psc.common.metrics import MetricsRegistry

log = get_logger("pacer.broker")


def run_broker(
    config: BrokerConfig, *, ready: threading.Event | None = None, stop: threading.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``): join the group, own partitions, answer HTTP."""
    configure_logging(config.log_level)
    stop = stop or threading.Event()
    store = open_store(config.storage)
    store.create_schema()
    server = bind(config.host, config.port)
    port = server.server_address[1]
    address = config.advertised_url or f"http://{config.host}:{port}"
    metrics = MetricsRegistry("pacer")
    broker = Broker(
        store,
        address=address,
        control_partitions=config.control_partitions,
        metrics=metrics,
        buffer_capacity=config.buffer_capacity,
        low_watermark=config.low_watermark,
        refill_interval_s=config.refill_interval_s,
        expire_interval_s=config.expire_interval_s,
        gc_interval_s=config.gc_interval_s,
    )
    server.RequestHandlerClass = handler_class(Api(broker, config.admin_token))
    kafka: dict[str, Any] = {"psc.project": "pacer-broker", **config.psc}
    doorbell = Doorbell(kafka, config.control_topic, config.control_partitions)
    membership = Membership(
        kafka
        | {
            "psc.consumer.group.id": config.group_id,
            "psc.consumer.session.timeout.ms": str(config.session_timeout_ms),
            "psc.consumer.poll.interval.max.ms": str(config.rebalance_timeout_ms),
            "psc.consumer.offset.auto.reset": "latest",
            "psc.client.id": f"pacer-broker-{uuid.uuid4().hex[:6]}",
        },
        config.control_topic,
        on_doorbell=broker.doorbell,
        on_change=broker.ownership_changed,
    )
    broker.owned_control = membership.owned
    broker.ring = doorbell.ring
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    broker.start()
    membership.start()
    serving = threading.Thread(target=server.serve_forever, name="pacer-http", daemon=True)
    serving.start()
    log.info("broker_started", address=address, control_topic=config.control_topic)
    # One write, newline included: print() writes the text and the newline apart, and with unbuffered output a
    # log line on stderr (the same file, when the two are joined) can land between them.
    sys.stdout.write(f"pacer broker listening on {address}\n")
    sys.stdout.flush()
    stop.wait()
    log.info("broker_stopping", address=address)
    membership.close()  # leave the group first, so the partitions move at once
    broker.stop()  # buffers dropped: their jobs are PENDING for the next owner
    server.shutdown()
    server.server_close()
    doorbell.close()
    store.close()
    log.info("broker_stopped", address=address)


__all__ = ["Broker", "BrokerConfig", "control_partition", "run_broker"]
