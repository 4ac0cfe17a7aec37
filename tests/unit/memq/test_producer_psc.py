"""How the PSC backend turns a discovered endpoint and PSC's librdkafka-named settings into producer settings."""

from __future__ import annotations

import pytest

from memq._psc_backend import MemqBackend, producer_config
from psc import InvalidUriError, TopicUri
from psc._discovery import ServiceEndpoint


def test_settings_that_mean_something_for_memq_are_translated() -> None:
    endpoint = ServiceEndpoint("10.0.0.1:9192, 10.0.0.2:9192", {"security.protocol": "PLAINTEXT"})
    native = {
        "linger.ms": "25",
        "compression.type": "lz4",
        "delivery.timeout.ms": "45000",
        "queue.buffering.max.kbytes": "1024",
        "acks": "all",
        "enable.idempotence": "true",
    }
    config = producer_config(endpoint, native)
    assert config.brokers == ["10.0.0.1:9192", "10.0.0.2:9192"]
    assert (config.linger_ms, config.compression, config.request_timeout_ms) == (25, "zstd", 45000)
    assert config.max_inflight_bytes == 1024 * 1024 and config.tls is None


def test_secure_endpoints_get_tls_with_their_certificates() -> None:
    security = {"security.protocol": "SSL", "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/c.pem"}
    security["ssl.key.location"] = "/k.pem"
    config = producer_config(ServiceEndpoint("h:1", security), {"compression.type": "gzip"})
    assert config.compression == "gzip"
    assert config.tls is not None
    assert (config.tls.ca_file, config.tls.cert_file, config.tls.key_file) == ("/ca.pem", "/c.pem", "/k.pem")


def test_memq_uris_need_plaintext_or_secure() -> None:
    backend = MemqBackend()
    backend.validate(TopicUri.parse("plaintext:/rn:memq:prod:aws_us-east-1::events:clicks"))
    with pytest.raises(InvalidUriError, match="MemQ URIs use protocol"):
        backend.validate(TopicUri.parse("tls:/rn:memq:prod:aws_us-east-1::events:clicks"))
