"""What producers and consumers resolve once from their configuration: interceptor chains, latency
sampling, remediation and certificate schedules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psc._config import PscConfig
from psc._metrics import ClientMetrics
from psc._remediation import Backoff, ProactiveResetSchedule, Remediator
from psc.backends import Cluster
from psc.interceptors import InterceptorChain, RawInterceptor, TypedInterceptor

METRICS_EVERY_S = 1.0  # counts kept in plain ints are published to Prometheus this often
CERT_CHECK_EVERY_S = 10.0
ERROR_RESET_INTERVAL_S = 10.0  # at most one error-driven reset per client this often: no reset storms


class ClientSettings:
    """The parts of a client's resolved configuration that producers and consumers share."""

    def __init__(
        self,
        config: PscConfig,
        interceptors: Iterable[TypedInterceptor | RawInterceptor],
        metrics: ClientMetrics,
        client_type: str,
        custom_serde: bool,
    ) -> None:
        self.config = config
        self.native: dict[str, Any] = dict(config.native)
        chosen = list(interceptors)
        self.typed_chain: InterceptorChain[Any] = InterceptorChain(
            [i for i in chosen if not isinstance(i, RawInterceptor)]
        )
        self.raw_chain: InterceptorChain[Any] = InterceptorChain([i for i in chosen if isinstance(i, RawInterceptor)])
        bytes_serde = config.key_serde == config.value_serde == "bytes" and not custom_serde
        # Plain clients pass records straight through: no serde, no interceptors.
        self.plain = bytes_serde and self.typed_chain.empty and self.raw_chain.empty
        rate = config.latency_sample_rate if config.metrics_enabled else 0.0
        self.sample_every = max(1, round(1 / rate)) if rate > 0 else 0
        self.auto_resolution = config.auto_resolution_enabled
        self.retries = config.auto_resolution_retry_count
        self.backoff = Backoff(
            config.auto_resolution_backoff_initial_ms / 1000, config.auto_resolution_backoff_max_ms / 1000
        )
        self.remediator = Remediator(
            enabled=self.auto_resolution,
            retry_count=self.retries,
            backoff=self.backoff,
            metrics=metrics,
            client_type=client_type,
        )

    def certificate_schedule(self, cluster: Cluster) -> ProactiveResetSchedule | None:
        cert = self.config.ssl_certificate_location
        if cluster.protocol != "secure" or not cert:
            return None
        return ProactiveResetSchedule(cert, self.config.ssl_reset_before_expiry_seconds)

    def close(self) -> None:
        self.typed_chain.close()
        self.raw_chain.close()
        self.remediator.flush_log()
