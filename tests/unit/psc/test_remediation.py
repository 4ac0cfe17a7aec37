from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry

from psc._metrics import ClientMetrics
from psc._remediation import (
    Action,
    Backoff,
    Catalogue,
    CatalogueError,
    ErrorInfo,
    ProactiveResetSchedule,
    Remediator,
    Remedy,
    backend_error,
    certificate_not_after,
)
from psc.common import MetricsRegistry
from psc.errors import BackendError, RemediationExhaustedError, TransactionError

URI = "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:topic01"


def kafka_exc(code: int, message: str = "", *, fatal: bool = False, retriable: bool = False) -> KafkaException:
    return KafkaException(KafkaError(code, message or "failure", fatal=fatal, retriable=retriable))


class Failing:
    """An operation that raises the given exceptions in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok", forever: bool = False) -> None:
        self.errors = list(errors)
        self.result = result
        self.forever = forever
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.forever:
            raise self.errors[0]
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class Resets:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(registry: CollectorRegistry, sleeps: list[float]) -> Callable[..., Remediator]:
    metrics = ClientMetrics(MetricsRegistry("psc", registry))

    def build(client_type: str = "producer", **kwargs: Any) -> Remediator:
        kwargs.setdefault("retry_count", 3)
        kwargs.setdefault("backoff", Backoff(0.1, 1.0, random=lambda: 0.5, sleep=sleeps.append))
        return Remediator(
            metrics=metrics,
            client_type=client_type,
            topic_label=URI,
            **kwargs,
        )

    return build


def actions(registry: CollectorRegistry, action: str, code: str, client_type: str = "producer") -> float:
    labels = {"action": action, "code": code, "client_type": client_type}
    return registry.get_sample_value("psc_remediation_actions_total", labels) or 0.0


def per_topic(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"topic_uri": URI}) or 0.0


# --- Catalogue -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "client_type", "fatal", "expected"),
    [
        (KafkaError._FATAL, "", "producer", True, Action.RESET),
        (KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "", "producer", True, Action.RESET),
        (KafkaError._MSG_TIMED_OUT, "", "producer", False, Action.RETRY_THEN_RESET),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, "", "producer", False, Action.RETRY),
        (KafkaError._UNKNOWN_PARTITION, "", "consumer", False, Action.RETRY),
        (KafkaError._ALL_BROKERS_DOWN, "", "consumer", False, Action.RETRY),
        (KafkaError._TRANSPORT, "", "producer", False, Action.RETRY),
        (KafkaError.REBALANCE_IN_PROGRESS, "", "consumer", False, Action.RETRY),
        (KafkaError.ILLEGAL_GENERATION, "", "consumer", False, Action.RETRY),
        (KafkaError.UNKNOWN_MEMBER_ID, "", "consumer", False, Action.RETRY),
        (KafkaError._MAX_POLL_EXCEEDED, "", "consumer", False, Action.RESET),
        (
            KafkaError._SSL,
            "ssl://b:9093/1: SSL handshake failed: certificate verify failed",
            "consumer",
            False,
            Action.RESET,
        ),
        (KafkaError._SSL, "ssl://b:9093/1: Disconnected", "consumer", False, Action.RETRY),
        (KafkaError._AUTHENTICATION, "SSL handshake failed", "producer", False, Action.RESET),
        (
            KafkaError._AUTHENTICATION,
            "SASL authentication failed: bad password",
            "producer",
            False,
            Action.THROW,
        ),
        (KafkaError.OFFSET_OUT_OF_RANGE, "", "consumer", False, Action.RESET),
        (KafkaError._AUTO_OFFSET_RESET, "", "consumer", False, Action.RESET),
        (KafkaError.NOT_LEADER_FOR_PARTITION, "", "producer", False, Action.RETRY),
        (KafkaError.LEADER_NOT_AVAILABLE, "", "producer", False, Action.RETRY),
        (KafkaError.REQUEST_TIMED_OUT, "", "producer", False, Action.RETRY),
        (KafkaError.NOT_ENOUGH_REPLICAS, "", "producer", False, Action.RETRY),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "", "consumer", False, Action.THROW),
        (KafkaError._INVALID_ARG, "", "producer", False, Action.THROW),
        (KafkaError.MSG_SIZE_TOO_LARGE, "", "producer", False, Action.THROW),
        (KafkaError.INVALID_CONFIG, "", "producer", False, Action.THROW),
        (KafkaError._PARTITION_EOF, "", "consumer", False, Action.NONE),
        (KafkaError.PRODUCER_FENCED, "", "transactional_producer", True, Action.THROW),
        (KafkaError.INVALID_PRODUCER_EPOCH, "", "transactional_producer", True, Action.THROW),
        # Retrying on a dead client is pointless: a fatal error falls back to the _FATAL remedy.
        (KafkaError._MSG_TIMED_OUT, "", "producer", True, Action.RESET),
    ],
)
def test_builtin_catalogue(code: int, message: str, client_type: str, fatal: bool, expected: Action) -> None:
    error = KafkaError(code, message or "failure", fatal=fatal)
    assert Catalogue.load().lookup(error, client_type).action is expected


def test_builtin_catalogue_details() -> None:
    catalogue = Catalogue.load()
    unknown = catalogue.lookup(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), "producer")
    assert unknown.on_exhausted is Action.THROW
    fenced = catalogue.lookup(KafkaError(KafkaError.PRODUCER_FENCED, fatal=True), "transactional_producer")
    assert fenced.exception_name == "TransactionError"
    fatal_txn = catalogue.lookup(KafkaError(KafkaError._FATAL, fatal=True), "transactional_producer")
    assert (fatal_txn.action, fatal_txn.exception_name) == (Action.THROW, "TransactionError")


def test_unknown_errors_use_backend_flags() -> None:
    catalogue = Catalogue.load()
    assert catalogue.lookup(KafkaError(9999, retriable=True), "producer").action is Action.RETRY
    assert catalogue.lookup(KafkaError(9999), "producer").action is Action.THROW


def test_error_info_matches_by_name_without_code() -> None:
    catalogue = Catalogue.load()
    assert catalogue.lookup(ErrorInfo(None, "_TRANSPORT", "broker gone"), "consumer").action is Action.RETRY
    assert catalogue.lookup(ErrorInfo(None, "NOPE"), "consumer").action is Action.THROW


def test_patterned_entries_win_over_earlier_unpatterned_ones() -> None:
    catalogue = Catalogue.from_entries(
        [
            {"code": "_SSL", "action": "RETRY", "applies_to": ["consumer"]},
            {"code": "_SSL", "message_pattern": "certificate", "action": "RESET", "applies_to": ["consumer"]},
            {"code": -181, "action": "THROW", "applies_to": ["producer"]},
        ]
    )
    assert catalogue.lookup(KafkaError(KafkaError._SSL, "bad certificate"), "consumer").action is Action.RESET
    assert catalogue.lookup(KafkaError(KafkaError._SSL, "reset by peer"), "consumer").action is Action.RETRY
    assert catalogue.lookup(KafkaError(KafkaError._SSL, "certificate"), "producer").action is Action.THROW


def test_catalogue_validation_lists_every_problem(tmp_path: Path) -> None:
    entries = [
        {"code": "_TRANSPORT", "action": "RETRY"},
        {"code": "_TRANSPORT", "action": "EXPLODE"},
        {"code": "_SSL", "message_pattern": "(unclosed", "action": "RESET"},
        {"code": "_NO_SUCH_ERROR", "action": "RETRY"},
        {"code": "_SSL", "action": "RETRY", "applies_to": ["admin"]},
        {"code": "_SSL", "action": "THROW", "exception": "NoSuchError"},
        {"code": "_SSL", "action": "THROW", "colour": "red"},
        "not an object",
    ]
    with pytest.raises(CatalogueError) as info:
        Catalogue.from_entries(entries)
    problems = info.value.problems
    assert len(problems) == 7
    assert problems[0].startswith("entry 1: action 'EXPLODE'")
    assert problems[1].startswith("entry 2: message_pattern '(unclosed'")
    assert problems[2].startswith("entry 3: unknown error code name '_NO_SUCH_ERROR'")
    assert problems[3].startswith("entry 4: applies_to has unknown client type")
    assert problems[4].startswith("entry 5: exception 'NoSuchError'")
    assert problems[5] == "entry 6: unknown field(s) colour"
    assert problems[6].startswith("entry 7: expected an object")


def test_catalogue_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text('{"entries": [{"code": "_TRANSPORT", "action": "NONE", "applies_to": ["consumer"]}]}')
    catalogue = Catalogue.load(path)
    assert catalogue.lookup(KafkaError(KafkaError._TRANSPORT), "consumer").action is Action.NONE
    path.write_text("{broken")
    with pytest.raises(CatalogueError, match="not JSON"):
        Catalogue.load(path)


# --- Backoff ---------------------------------------------------------------------------------------


def test_backoff_caps_grow_exponentially_to_the_bound() -> None:
    backoff = Backoff(0.1, 1.0, jitter=False)
    assert list(backoff.delays(6)) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.cap(5000) == 1.0


def test_backoff_full_jitter_is_uniform_below_the_cap() -> None:
    assert list(Backoff(0.1, 1.0, random=lambda: 0.5).delays(3)) == pytest.approx([0.05, 0.1, 0.2])
    rng = random.Random(7)
    backoff = Backoff(0.1, 2.0, multiplier=3, random=rng.random)
    delays = [backoff.delay(attempt) for attempt in range(8) for _ in range(200)]
    caps = [backoff.cap(attempt) for attempt in range(8) for _ in range(200)]
    assert all(0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) > 1000  # really jittered, not constant
    assert max(delays) > 1.5


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(0.1, 1.0, multiplier=0.5)


# --- Remediator ------------------------------------------------------------------------------------


def test_success_counts_nothing(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    assert make().run(lambda: 7, Resets()) == 7
    assert registry.get_sample_value("psc_remediation_actions_total", {}) is None


def test_retry_then_success(make: Callable[..., Remediator], registry: CollectorRegistry, sleeps: list[float]) -> None:
    operation = Failing(kafka_exc(KafkaError._TRANSPORT), kafka_exc(KafkaError._TRANSPORT))
    reset = Resets()
    assert make().run(operation, reset) == "ok"
    assert operation.calls == 3
    assert reset.count == 0
    assert sleeps == pytest.approx([0.05, 0.1])
    assert actions(registry, "RETRY", "_TRANSPORT") == 2
    assert per_topic(registry, "psc_client_retries_total") == 2
    assert registry.get_sample_value("psc_errors_total", {"topic_uri": URI, "code": "_TRANSPORT"}) == 2


def test_retry_exhausted_throws(
    make: Callable[..., Remediator], registry: CollectorRegistry, sleeps: list[float]
) -> None:
    native = kafka_exc(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")
    operation = Failing(native, forever=True)
    with pytest.raises(RemediationExhaustedError) as info:
        make().run(operation, Resets())
    assert operation.calls == 4
    assert len(sleeps) == 3
    error = info.value
    assert (error.attempts, error.action, error.code, error.name) == (3, "RETRY", 3, "UNKNOWN_TOPIC_OR_PART")
    assert error.native is native.args[0]
    assert error.__cause__ is native
    assert actions(registry, "RETRY", "UNKNOWN_TOPIC_OR_PART") == 3
    assert actions(registry, "THROW", "UNKNOWN_TOPIC_OR_PART") == 1


def test_retry_exhausted_can_reset(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    catalogue = Catalogue.from_entries(
        [{"code": "_TRANSPORT", "action": "RETRY", "on_exhausted": "RESET", "applies_to": ["producer"]}]
    )
    operation = Failing(*[kafka_exc(KafkaError._TRANSPORT)] * 4)
    reset = Resets()
    assert make(catalogue=catalogue).run(operation, reset) == "ok"
    assert (operation.calls, reset.count) == (5, 1)
    assert per_topic(registry, "psc_client_resets_total") == 1


def test_reset_then_success(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    operation = Failing(kafka_exc(KafkaError._MAX_POLL_EXCEEDED))
    reset = Resets()
    assert make("consumer").run(operation, reset) == "ok"
    assert (operation.calls, reset.count) == (2, 1)
    assert actions(registry, "RESET", "_MAX_POLL_EXCEEDED", "consumer") == 1
    assert per_topic(registry, "psc_client_resets_total") == 1


def test_reset_happens_once_per_run(make: Callable[..., Remediator]) -> None:
    operation = Failing(kafka_exc(KafkaError._MAX_POLL_EXCEEDED), forever=True)
    reset = Resets()
    with pytest.raises(RemediationExhaustedError):
        make("consumer").run(operation, reset)
    assert (operation.calls, reset.count) == (2, 1)


def test_retry_then_reset(make: Callable[..., Remediator], registry: CollectorRegistry, sleeps: list[float]) -> None:
    operation = Failing(kafka_exc(KafkaError._MSG_TIMED_OUT), forever=True)
    reset = Resets()
    with pytest.raises(RemediationExhaustedError) as info:
        make(retry_count=2).run(operation, reset)
    # 1 call + 2 retries, reset, 1 call + 2 retries with a fresh budget.
    assert (operation.calls, reset.count, len(sleeps)) == (6, 1, 4)
    assert info.value.action == "RETRY_THEN_RESET"
    assert actions(registry, "RETRY", "_MSG_TIMED_OUT") == 4
    assert actions(registry, "RESET", "_MSG_TIMED_OUT") == 1
    assert per_topic(registry, "psc_client_resets_total") == 1


def test_retry_then_reset_recovers_after_reset(make: Callable[..., Remediator]) -> None:
    operation = Failing(*[kafka_exc(KafkaError._MSG_TIMED_OUT)] * 3)
    reset = Resets()
    assert make(retry_count=2).run(operation, reset) == "ok"
    assert (operation.calls, reset.count) == (4, 1)


def test_throw_maps_to_backend_error(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    native = kafka_exc(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    operation = Failing(native, forever=True)
    with pytest.raises(BackendError) as info:
        make("consumer").run(operation, Resets())
    error = info.value
    assert type(error) is BackendError
    assert (error.code, error.name, error.fatal, error.retriable) == (
        29,
        "TOPIC_AUTHORIZATION_FAILED",
        False,
        False,
    )
    assert "Topic authorization failed" in str(error)
    assert operation.calls == 1
    assert actions(registry, "THROW", "TOPIC_AUTHORIZATION_FAILED", "consumer") == 1


def test_fencing_surfaces_as_transaction_error(make: Callable[..., Remediator]) -> None:
    operation = Failing(kafka_exc(KafkaError.PRODUCER_FENCED, "fenced", fatal=True), forever=True)
    reset = Resets()
    with pytest.raises(TransactionError) as info:
        make("transactional_producer").run(operation, reset)
    assert info.value.fatal
    assert info.value.context["name"] == "PRODUCER_FENCED"
    assert reset.count == 0


def test_none_swallows(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    operation = Failing(kafka_exc(KafkaError._PARTITION_EOF))
    assert make("consumer").run(operation, Resets()) is None
    assert operation.calls == 1
    assert actions(registry, "NONE", "_PARTITION_EOF", "consumer") == 1


def test_disabled_throws_everything_typed(
    make: Callable[..., Remediator], registry: CollectorRegistry, sleeps: list[float]
) -> None:
    operation = Failing(kafka_exc(KafkaError._TRANSPORT, retriable=True), forever=True)
    with pytest.raises(BackendError) as info:
        make(enabled=False).run(operation, Resets())
    assert not isinstance(info.value, RemediationExhaustedError)
    assert info.value.retriable
    assert (operation.calls, sleeps) == (1, [])
    assert actions(registry, "THROW", "_TRANSPORT") == 1
    assert make(enabled=False).remedy_for(KafkaError(KafkaError._PARTITION_EOF)).action is Action.THROW


def test_non_backend_exceptions_pass_through(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    operation = Failing(ValueError("bad input"), forever=True)
    with pytest.raises(ValueError, match="bad input"):
        make().run(operation, Resets())
    assert operation.calls == 1
    assert registry.get_sample_value("psc_errors_total", {"topic_uri": URI, "code": "ValueError"}) is None


def test_full_local_queue_is_retried(make: Callable[..., Remediator]) -> None:
    operation = Failing(BufferError("Local: Queue full"))
    assert make().run(operation, Resets()) == "ok"
    assert operation.calls == 2


def test_backend_errors_from_other_backends(make: Callable[..., Remediator]) -> None:
    operation = Failing(BackendError("connection lost", name="_TRANSPORT"))
    assert make().run(operation, Resets()) == "ok"
    assert operation.calls == 2


def test_remedy_for_callback_paths(make: Callable[..., Remediator], registry: CollectorRegistry) -> None:
    remediator = make()
    remedy = remediator.remedy_for(KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"))
    assert remedy.action is Action.RETRY_THEN_RESET
    assert actions(registry, "RETRY_THEN_RESET", "_MSG_TIMED_OUT") == 1
    error = remediator.to_psc_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too big"), Remedy(Action.THROW))
    assert isinstance(error, BackendError)
    assert (error.code, error.name) == (10, "MSG_SIZE_TOO_LARGE")


def test_a_repeating_error_is_counted_every_time_and_logged_once_per_interval(
    make: Callable[..., Remediator], registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def warning(self, event: str, **fields: Any) -> None:
            lines.append((event, fields))

    monkeypatch.setattr("psc._remediation._log", Log())
    remediator = make()
    for _ in range(5):  # a broker outage times out every queued record alike
        remediator.remedy_for(KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"))
    assert actions(registry, "RETRY_THEN_RESET", "_MSG_TIMED_OUT") == 5
    assert [event for event, _ in lines] == ["remediating backend error"]
    remediator.flush_log()
    assert len(lines) == 2 and lines[1][1]["repeated"] == 4


def test_backend_error_extraction() -> None:
    info = backend_error(kafka_exc(KafkaError._SSL, "handshake", retriable=True))
    assert info is not None
    assert (info.code, info.name, info.message, info.retriable) == (-181, "_SSL", "handshake", True)
    assert backend_error(RuntimeError("x")) is None


def test_unknown_client_type_rejected() -> None:
    with pytest.raises(ValueError, match="admin"):
        Remediator(client_type="admin")


# --- Certificates ----------------------------------------------------------------------------------


def write_cert(path: Path, not_after: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "psc-test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=1))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))


def test_certificate_not_after(tmp_path: Path) -> None:
    expiry = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    write_cert(tmp_path / "client.pem", expiry)
    assert certificate_not_after(tmp_path / "client.pem") == expiry
    assert certificate_not_after(tmp_path / "missing.pem") is None
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert certificate_not_after(tmp_path / "junk.pem") is None


def test_proactive_reset_schedule(tmp_path: Path) -> None:
    path = tmp_path / "client.pem"
    now = datetime(2030, 1, 1, tzinfo=UTC)
    write_cert(path, now + timedelta(minutes=30))
    schedule = ProactiveResetSchedule(path, reset_before_s=600)
    assert not schedule.due(now)
    assert not schedule.due(now + timedelta(minutes=19))
    assert schedule.due(now + timedelta(minutes=21))
    schedule.mark_reset()
    # The file was not rotated: no reset loop.
    assert not schedule.due(now + timedelta(minutes=22))
    write_cert(path, now + timedelta(hours=2))
    assert not schedule.due(now + timedelta(minutes=23))
    assert schedule.not_after == now + timedelta(hours=2)
    assert schedule.due(now + timedelta(hours=2) - timedelta(minutes=5))


def test_proactive_reset_without_certificate(tmp_path: Path) -> None:
    schedule = ProactiveResetSchedule(tmp_path / "absent.pem", reset_before_s=60)
    assert not schedule.due()
    write_cert(tmp_path / "absent.pem", datetime.now(UTC) + timedelta(seconds=30))
    assert schedule.due()
