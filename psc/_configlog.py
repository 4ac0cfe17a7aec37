"""Config logging: each client reports its effective configuration once, when it starts.

With ``psc.config.logging.enabled`` a client writes one structured log line and sends one JSON record
(secrets redacted in both) to ``psc.config.logging.topic.uri``. The record is sent from a background
thread by a plain internal producer that has config logging switched off, so reporting never blocks or
breaks the client's start-up and never reports itself; failures are logged and dropped.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from psc._config import PscConfig
from psc.common import get_logger

_log = get_logger("psc.configlog")

# Generic keys the internal producer inherits: how to find and reach the config-log cluster.
_INHERITED_PREFIXES = ("psc.discovery.", "psc.ssl.")
FLUSH_TIMEOUT_S = 5.0


def config_record(config: PscConfig, client_type: str, topic_uris: Sequence[str]) -> dict[str, Any]:
    """The config record: redacted configuration plus who reports it and for which topics."""
    return {
        "config": config.redacted(),
        "host": socket.gethostname(),
        "timestamp": int(time.time() * 1000),
        "project": config.project,
        "client_type": client_type,
        "client_id": config.client_id or config.project,
        "topic_uris": list(topic_uris),
        "clusters": sorted({_cluster_of(uri) for uri in topic_uris}),
    }


def _cluster_of(uri: str) -> str:
    return uri[: uri.rfind(":") + 1]


class RecordProducer(Protocol):
    """What sending the config record needs of a producer: PSC's :class:`~psc.Producer`, passed in by the
    clients so that this module does not import the producer that imports it."""

    def produce(self, topic: str, value: Any = None) -> None: ...
    def flush(self, timeout: float | None = None) -> int: ...
    def close(self, timeout: float | None = None) -> None: ...


def report_config(
    config: PscConfig,
    client_type: str,
    topic_uris: Sequence[str],
    make_producer: Callable[[dict[str, Any]], RecordProducer],
) -> threading.Thread | None:
    """Log the client's configuration and send its record in the background with a producer from
    ``make_producer`` (called with its config); never raises.

    Returns the sending thread (None when nothing is sent) so tests can wait for it.
    """
    if not config.config_logging_enabled:
        return None
    try:
        record = config_record(config, client_type, topic_uris)
        _log.info("psc client config", **record)
    except Exception:
        _log.warning("config logging failed", exc_info=True)
        return None
    target = config.config_logging_topic_uri
    if not target:
        return None
    thread = threading.Thread(
        target=_send, args=(config, target, record, make_producer), name="psc-config-log", daemon=True
    )
    thread.start()
    return thread


def _internal_config(config: PscConfig) -> dict[str, Any]:
    inherited = {
        key: value
        for key, value in config.effective().items()
        if key.startswith(_INHERITED_PREFIXES) and value is not None
    }
    return {
        **inherited,
        "psc.project": config.project,
        "psc.client.id": f"{config.client_id or config.project}-config-log",
        "psc.config.logging.enabled": False,
        "psc.metrics.enabled": False,
    }


def _send(
    config: PscConfig, target: str, record: dict[str, Any], make_producer: Callable[[dict[str, Any]], RecordProducer]
) -> None:
    try:
        producer = make_producer(_internal_config(config))  # an ordinary PSC producer, its own config unlogged
        try:
            producer.produce(target, json.dumps(record, default=str).encode("utf-8"))
            left = producer.flush(FLUSH_TIMEOUT_S)
            if left:
                _log.warning("config record not delivered", topic_uri=target, pending=left)
        finally:
            producer.close(0)
    except Exception:
        _log.warning("config logging failed", topic_uri=target, exc_info=True)
