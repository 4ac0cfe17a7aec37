"""The broker's HTTP/JSON API (stdlib ``http.server``, one thread per connection, keep-alive).

Errors are JSON ``{"error": code, "message": text}`` with a 4xx status for bad requests; a non-owner
answers 409 ``not_owner`` with the owner's address, a fenced owner 409 ``fenced``. Admin operations need
``Authorization: Bearer <admin_token>``. The API is described in docs/pacer-api.md.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pymysql

from pacer import _wire as wire
from pacer._errors import (
    Fenced,
    InvalidArgument,
    NotOwner,
    PacerError,
    QueueExists,
    QueueNotFound,
    Unauthorized,
)
from pacer._models import Ack, AckResult, Descriptor, JobState
from pacer._names import queue_name
from pacer.broker._broker import Broker
from pacer.broker._dashboard import render_dashboard
from psc.common.log import get_logger

log = get_logger("pacer.broker.http")
MAX_REQUEST_BYTES = 16 << 20

Handler = TypeVar("Handler", bound=Callable[..., Any])
_ROUTES: list[tuple[str, re.Pattern[str], str, bool]] = []  # method, path, handler name, admin


def _route(method: str, pattern: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, re.compile(pattern), handler.__name__, admin))
        return handler

    return register


class _Request:
    def __init__(self, api: Api, body: Any, query: dict[str, str], queue: str | None) -> None:
        self.api = api
        self.body = body
        self.query = query
        self._queue = queue

    @property
    def broker(self) -> Broker:
        return self.api.broker

    @property
    def queue(self) -> str:
        assert self._queue is not None
        return queue_name(self._queue)

    def items(self, name: str) -> list[Any]:
        value = wire.field(self.body, name, list, [])
        if len(value) > 1000:
            raise InvalidArgument(f"field {name!r} holds {len(value)} items; at most 1000")
        return value

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.query.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f"query parameter {name!r} must be an integer, got {value!r:.40}") from None

    def bool_arg(self, name: str) -> bool | None:
        value = self.query.get(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise InvalidArgument(f"query parameter {name!r} must be true or false")
        return value == "true"


class Api:
    """Maps requests to the broker."""

    def __init__(self, broker: Broker, admin_token: str | None) -> None:
        self.broker = broker
        self.admin_token = admin_token
        metrics = broker.metrics
        self.latency = metrics.histogram(
            "broker_request_seconds",
            "Server-side request latency",
            ["op"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5),
        )
        self.dequeued = metrics.counter("broker_dequeued_total", "Jobs handed out", ["queue"])
        self.acks = metrics.counter("broker_acks_total", "Acks by result", ["queue", "result"])
        self.errors = metrics.counter("broker_request_errors_total", "Requests answered with an error", ["error"])

    def authorize(self, header: str | None) -> None:
        if self.admin_token is None:
            raise Unauthorized("admin operations are disabled: the broker has no admin_token")
        expected = f"Bearer {self.admin_token}"
        if header is None or not hmac.compare_digest(header.encode(), expected.encode()):
            raise Unauthorized("admin operation needs the header 'Authorization: Bearer <admin token>'")

    # -- queues ---------------------------------------------------------------------------------------

    @_route("GET", r"/v1/queues")
    def list_queues(self, req: _Request) -> Any:
        return {"queues": req.broker.queue_names()}

    @_route("POST", r"/v1/queues", admin=True)
    def create_queue(self, req: _Request) -> Any:
        body = req.body
        rate: float | None = wire.field(body, "max_jobs_per_second", (int, float), None)
        req.broker.create_queue(
            queue_name(wire.field(body, "name", str)),
            partitions=wire.field(body, "partitions", int, 1),
            lease=timedelta(milliseconds=wire.field(body, "lease_ms", int, 300_000)),
            max_jobs_per_second=rate,
            succeeded_ttl=timedelta(seconds=wire.field(body, "succeeded_ttl_s", int, 86_400)),
            failed_ttl=timedelta(seconds=wire.field(body, "failed_ttl_s", int, 604_800)),
        )
        return {"created": body["name"]}

    @_route("DELETE", r"/v1/queues/(?P<queue>[^/]+)", admin=True)
    def delete_queue(self, req: _Request) -> Any:
        req.broker.delete_queue(req.queue)
        return {"deleted": req.queue}

    @_route("PUT", r"/v1/queues/(?P<queue>[^/]+)/rate_limit", admin=True)
    def set_rate_limit(self, req: _Request) -> Any:
        rate: float | None = wire.field(req.body, "max_jobs_per_second", (int, float), None)
        req.broker.set_rate_limit(req.queue, rate)
        return {"max_jobs_per_second": rate}

    @_route("GET", r"/v1/queues/(?P<queue>[^/]+)/partitions")
    def partitions(self, req: _Request) -> Any:
        return {
            "partitions": [
                {"partition": p.partition, "shard": p.shard, "epoch": p.epoch, "owner": p.owner}
                for p in req.broker.partitions(req.queue)
            ]
        }

    # -- jobs -----------------------------------------------------------------------------------------

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/jobs")
    def enqueue(self, req: _Request) -> Any:
        jobs = [wire.job_from_json(obj) for obj in req.items("jobs")]
        return {"descriptors": [str(d) for d in req.broker.enqueue(req.queue, jobs)]}

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/dequeue")
    def dequeue(self, req: _Request) -> Any:
        leases = req.broker.dequeue(req.queue, wire.field(req.body, "limit", int, 1))
        self.dequeued.labels(req.queue).inc(len(leases))
        return {"jobs": [wire.lease_to_json(lease) for lease in leases]}

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/ack")
    def ack(self, req: _Request) -> Any:
        succeeded, failed = _acks(req)
        return self._acked(req.queue, req.broker.ack(req.queue, succeeded=succeeded, failed=failed))

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/ack_and_dequeue")
    def ack_and_dequeue(self, req: _Request) -> Any:
        succeeded, failed = _acks(req)
        limit = wire.field(req.body, "limit", int, 1)
        result, leases = req.broker.ack_and_dequeue(req.queue, limit, succeeded=succeeded, failed=failed)
        self.dequeued.labels(req.queue).inc(len(leases))
        return self._acked(req.queue, result) | {"jobs": [wire.lease_to_json(lease) for lease in leases]}

    def _acked(self, queue: str, result: AckResult) -> dict[str, Any]:
        self.acks.labels(queue, "accepted").inc(len(result.accepted))
        self.acks.labels(queue, "rejected").inc(len(result.rejected))
        return {
            "accepted": [str(d) for d in result.accepted],
            "rejected": {str(d): r for d, r in result.rejected.items()},
        }

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/checkpoint")
    def checkpoint(self, req: _Request) -> Any:
        items = [wire.checkpoint_from_json(obj, req.queue) for obj in req.items("items")]
        return {"applied": req.broker.checkpoint(req.queue, items)}

    @_route("POST", r"/v1/lookup")
    def lookup(self, req: _Request) -> Any:
        descriptors = [Descriptor.parse(text) for text in req.items("descriptors")]
        found = req.broker.lookup(descriptors, include_body=wire.field(req.body, "include_body", bool, False))
        return {"jobs": {str(d): wire.info_to_json(info) for d, info in found.items()}}

    @_route("GET", r"/v1/queues/(?P<queue>[^/]+)/count")
    def count(self, req: _Request) -> Any:
        count = req.broker.count(
            req.queue,
            JobState.parse(req.arg("state", "pending")),
            priority=req.int_arg("priority"),
            future=req.bool_arg("future"),
            body_regex=req.arg("body_regex"),
        )
        return {"count": count}

    @_route("GET", r"/v1/queues/(?P<queue>[^/]+)/scan")
    def scan(self, req: _Request) -> Any:
        page = req.broker.scan(
            req.queue,
            JobState.parse(req.arg("state", "pending")),
            priority=req.int_arg("priority"),
            future=req.bool_arg("future"),
            body_regex=req.arg("body_regex"),
            limit=req.int_arg("limit", 100) or 100,
            cursor=req.arg("cursor"),
        )
        return {"jobs": [wire.info_to_json(info) for info in page.jobs], "cursor": page.cursor}

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/retry_failed", admin=True)
    def retry_failed(self, req: _Request) -> Any:
        retried = req.broker.retry_failed(
            req.queue,
            priority=wire.field(req.body, "priority", int, None),
            attempts=wire.field(req.body, "attempts", int, 1),
            run_after=wire.from_ms(wire.field(req.body, "run_after_ms", int, None)),
            limit=wire.field(req.body, "limit", int, 1000),
        )
        return {"retried": retried}

    @_route("POST", r"/v1/queues/(?P<queue>[^/]+)/delete_jobs", admin=True)
    def delete_jobs(self, req: _Request) -> Any:
        deleted = req.broker.delete_jobs(
            req.queue,
            JobState.parse(wire.field(req.body, "state", str)),
            priority=wire.field(req.body, "priority", int, None),
            body_regex=wire.field(req.body, "body_regex", str, None),
            limit=wire.field(req.body, "limit", int, 1000),
        )
        return {"deleted": deleted}

    # -- cluster --------------------------------------------------------------------------------------

    @_route("GET", r"/v1/health")
    def health(self, req: _Request) -> Any:
        return {"address": req.broker.address, "owned": len(req.broker.owned_partitions())}

    @_route("GET", r"/v1/cluster")
    def cluster(self, req: _Request) -> Any:
        return cluster_view(req.broker)


def _acks(req: _Request) -> tuple[list[Ack], list[Ack]]:
    """An ack request's ``succeeded`` and ``failed`` lists, each ack checked."""
    return (
        [wire.ack_from_json(obj, req.queue) for obj in req.items("succeeded")],
        [wire.ack_from_json(obj, req.queue) for obj in req.items("failed")],
    )


def cluster_view(broker: Broker) -> dict[str, Any]:
    """Queues, partitions, owners, epochs, counts by state, finish rates and the oldest ready job."""
    now = int(time.time() * 1_000_000)
    window_s = 60
    queues = []
    for name in broker.queue_names():
        try:
            config = broker.queue_config(name)
            partitions = []
            for info in broker.partitions(name):
                stats = broker.store.stats(name, info.partition, now, window_s * 1_000_000)
                oldest = stats.pop("oldest_ready_run_after")
                finished = stats.pop("finished_in_window") or 0
                partitions.append(
                    {
                        "partition": info.partition,
                        "shard": info.shard,
                        "owner": info.owner,
                        "epoch": info.epoch,
                        "counts": stats,
                        "finished_per_s": round(finished / window_s, 2),
                        "oldest_pending_age_s": None if oldest is None else round(max(0, now - oldest) / 1e6, 1),
                    }
                )
        except QueueNotFound:
            continue  # deleted while we looked
        queues.append(
            {
                "name": name,
                "partitions": partitions,
                "max_jobs_per_second": config.max_jobs_per_second,
                "lease_s": config.lease.total_seconds(),
            }
        )
    return {"broker": broker.address, "queues": queues}


def _status(exc: BaseException) -> tuple[HTTPStatus, str]:
    if isinstance(exc, InvalidArgument):
        return HTTPStatus.BAD_REQUEST, type(exc).__name__
    if isinstance(exc, QueueNotFound):
        return HTTPStatus.NOT_FOUND, "queue_not_found"
    if isinstance(exc, Unauthorized):
        return HTTPStatus.UNAUTHORIZED, "unauthorized"
    if isinstance(exc, NotOwner):
        return HTTPStatus.CONFLICT, "not_owner"
    if isinstance(exc, Fenced):
        return HTTPStatus.CONFLICT, "fenced"
    if isinstance(exc, QueueExists):
        return HTTPStatus.CONFLICT, "queue_exists"
    if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
        return HTTPStatus.SERVICE_UNAVAILABLE, "storage_unavailable"
    if isinstance(exc, PacerError):
        return HTTPStatus.INTERNAL_SERVER_ERROR, type(exc).__name__
    return HTTPStatus.INTERNAL_SERVER_ERROR, "internal"


def bind(host: str, port: int) -> ThreadingHTTPServer:
    """The listening socket, bound before the broker exists so its address carries the real port."""
    server = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    server.daemon_threads = True
    return server


def handler_class(api: Api) -> type[BaseHTTPRequestHandler]:
    routes = [(method, pattern, getattr(api, name), admin) for method, pattern, name, admin in _ROUTES]

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small answers go out at once, not after a delayed ACK
        wbufsize = 64 << 10  # status line, headers and body in one send (flushed after every request)
        server_version = "pacer-broker"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, content_type: str, seconds: float | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if seconds is not None:  # the handler's own time, for clients measuring the server apart
                self.send_header("Server-Timing", f"app;dur={seconds * 1000:.3f}")
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, obj: Any, seconds: float | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json", seconds)

        def _error(self, status: HTTPStatus, code: str, message: str, **extra: Any) -> None:
            api.errors.labels(code).inc()
            self._json(status, {"error": code, "message": message, **extra})

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                return self._error(HTTPStatus.BAD_REQUEST, "bad_request", "Content-Length is not an integer")
            if length > MAX_REQUEST_BYTES or length < 0:
                self.close_connection = True
                return self._error(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", f"request body over {MAX_REQUEST_BYTES} bytes"
                )
            raw = self.rfile.read(length) if length else b""
            if method == "GET" and url.path == "/":
                return self._send(200, render_dashboard(cluster_view(api.broker)).encode(), "text/html; charset=utf-8")
            if method == "GET" and url.path == "/metrics":
                return self._send(200, api.broker.metrics.exposition(), "text/plain; version=0.0.4")
            matched = [(m, p.fullmatch(url.path), h, a) for m, p, h, a in routes]
            matched = [entry for entry in matched if entry[1] is not None]
            if not matched:
                return self._error(HTTPStatus.NOT_FOUND, "no_route", f"no such path: {url.path}")
            chosen = [entry for entry in matched if entry[0] == method]
            if not chosen:
                allowed = ", ".join(sorted({entry[0] for entry in matched}))
                return self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"use {allowed} on {url.path}")
            _, match, handler, admin = chosen[0]
            assert match is not None
            started = time.perf_counter()
            try:
                body = json.loads(raw) if raw else {}
            except (ValueError, UnicodeDecodeError) as exc:
                return self._error(HTTPStatus.BAD_REQUEST, "malformed_json", f"request body is not JSON: {exc}")
            try:
                if admin:
                    api.authorize(self.headers.get("Authorization"))
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                result = handler(_Request(api, body, query, match.groupdict().get("queue")))
            except Exception as exc:
                status, code = _status(exc)
                if status >= 500:
                    log.warning("request_failed", path=url.path, error=repr(exc))
                extra = {"owner": exc.owner} if isinstance(exc, NotOwner) else {}
                if isinstance(exc, Fenced):
                    api.broker.fenced.labels(handler.__name__).inc()
                elif isinstance(exc, NotOwner):
                    api.broker.not_owner.labels(handler.__name__).inc()
                return self._error(status, code, str(exc), **extra)
            finally:
                seconds = time.perf_counter() - started
                api.latency.labels(handler.__name__).observe(seconds)
            self._json(200, result, seconds)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return RequestHandler
