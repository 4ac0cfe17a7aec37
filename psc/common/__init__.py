"""Conventions shared by every package of the toolkit.

One place for structured logging, typed settings, the Prometheus registry and the exception base, so that
``psc``, ``memq``, ``singer``, ``pacer`` and ``connectors`` log, configure, count and fail the same way.
"""

from psc.common.errors import ToolkitError
from psc.common.log import LogThrottle, configure_logging, get_logger
from psc.common.metrics import MetricsRegistry, default_registry, start_metrics_server
from psc.common.settings import ToolkitSettings

__all__ = [
    "LogThrottle",
    "MetricsRegistry",
    "ToolkitError",
    "ToolkitSettings",
    "configure_logging",
    "default_registry",
    "get_logger",
    "start_metrics_server",
]
