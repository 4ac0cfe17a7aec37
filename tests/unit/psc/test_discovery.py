from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from psc import _discovery
from psc._config import PscConfig
from psc._discovery import (
    ENV_DISCOVERY,
    ENV_DISCOVERY_FILE,
    ServiceEndpoint,
    discover,
    register_discovery_provider,
)
from psc._uri import TopicUri, parse_topic_uri
from psc.errors import DiscoveryError

PLAIN = parse_topic_uri("plaintext:/rn:kafka:dev:local_dev::cluster01:events")
SECURE = parse_topic_uri("secure:/rn:kafka:prod:aws_us-west-1:pii:cluster01:my_topic")


@pytest.fixture(autouse=True)
def clean_discovery(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_DISCOVERY, raising=False)
    monkeypatch.delenv(ENV_DISCOVERY_FILE, raising=False)
    monkeypatch.setattr(_discovery, "entry_points", lambda group: [])
    _discovery._entry_point_providers.cache_clear()
    yield
    _discovery._entry_point_providers.cache_clear()
    _discovery._REGISTERED.clear()


def make_config(**settings: Any) -> PscConfig:
    return PscConfig.from_mapping({"psc.project": "app", **settings})


def write_file(path: Path, entries: dict[str, Any]) -> str:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return str(path)


def test_explicit_config_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISCOVERY, json.dumps({PLAIN.cluster_prefix: {"connect": "env:1"}}))
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "file:1"}})
    register_discovery_provider(lambda uri, config: ServiceEndpoint("plugin:1"), name="test")
    config = make_config(**{"psc.discovery.connect": "b1:9092, b2:9093", "psc.discovery.file": path})
    endpoint = discover(PLAIN, config)
    assert endpoint.bootstrap == "b1:9092,b2:9093"
    assert endpoint.provider == "config psc.discovery.connect"
    assert endpoint.native() == {"bootstrap.servers": "b1:9092,b2:9093", "security.protocol": "PLAINTEXT"}


def test_environment_before_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISCOVERY, json.dumps({PLAIN.cluster_prefix: {"connect": "env:1"}}))
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "file:1"}})
    endpoint = discover(PLAIN, make_config(**{"psc.discovery.file": path}))
    assert (endpoint.bootstrap, endpoint.provider) == ("env:1", f"environment {ENV_DISCOVERY}")


def test_environment_without_the_cluster_falls_through_to_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISCOVERY, json.dumps({"plaintext:/rn:kafka:dev:local_dev::other:": {"connect": "e:1"}}))
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "file:1"}})
    endpoint = discover(PLAIN, make_config(**{"psc.discovery.file": path}))
    assert (endpoint.bootstrap, endpoint.provider) == ("file:1", f"file {path}")


def test_file_before_plugins(tmp_path: Path) -> None:
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "file:1"}})
    register_discovery_provider(lambda uri, config: ServiceEndpoint("plugin:1"), name="test")
    assert discover(PLAIN, make_config(**{"psc.discovery.file": path})).bootstrap == "file:1"
    assert discover(SECURE, make_config(**{"psc.discovery.file": path})).bootstrap == "plugin:1"


def test_file_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "127.0.0.1:9092"}})
    monkeypatch.setenv(ENV_DISCOVERY_FILE, path)
    assert discover(str(PLAIN), make_config()).bootstrap == "127.0.0.1:9092"


def test_file_lookup_by_cluster_prefix_then_rn_prefix(tmp_path: Path) -> None:
    path = write_file(
        tmp_path / "d.json",
        {
            "rn:kafka:prod:aws_us-west-1:pii:cluster01:": {"connect": "any-protocol:9092"},
            "plaintext:/rn:kafka:prod:aws_us-west-1:pii:cluster01:": {"connect": "exact:9092"},
        },
    )
    config = make_config(**{"psc.discovery.file": path})
    assert discover(SECURE.with_topic("x"), config).bootstrap == "any-protocol:9092"
    plain = parse_topic_uri("plaintext:/rn:kafka:prod:aws_us-west-1:pii:cluster01:t")
    assert discover(plain, config).bootstrap == "exact:9092"


def test_file_is_cached_until_it_changes(tmp_path: Path) -> None:
    file = tmp_path / "d.json"
    path = write_file(file, {PLAIN.cluster_prefix: {"connect": "one:1"}})
    config = make_config(**{"psc.discovery.file": path})
    assert discover(PLAIN, config).bootstrap == "one:1"
    first = _discovery._FILE_CACHE[path][2]
    assert discover(PLAIN, config).bootstrap == "one:1"
    assert _discovery._FILE_CACHE[path][2] is first
    write_file(file, {PLAIN.cluster_prefix: {"connect": "twotwo:2"}})
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert discover(PLAIN, config).bootstrap == "twotwo:2"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must be a JSON object keyed by cluster prefix"),
        (json.dumps({PLAIN.cluster_prefix: {"port": 1}}), f"entry {PLAIN.cluster_prefix!r} has no 'connect'"),
        (json.dumps({PLAIN.cluster_prefix: "b:1"}), f"entry {PLAIN.cluster_prefix!r} must be a JSON object"),
        (json.dumps({PLAIN.cluster_prefix: {"connect": "b1"}}), "connect 'b1' is not host:port"),
        (json.dumps({PLAIN.cluster_prefix: {"connect": "b1:1,b2:99999"}}), "'b2:99999' is not host:port"),
        (json.dumps({"not-a-prefix": {"connect": "b:1"}}), "entry 'not-a-prefix' is not a cluster prefix"),
        (json.dumps({str(PLAIN): {"connect": "b:1"}}), "names a topic"),
        (json.dumps({PLAIN.cluster_prefix: {"connect": "b:1", "linger.ms": "5"}}), "unsupported setting"),
        (json.dumps({PLAIN.cluster_prefix: {"connect": "b:1", "ssl.ca.location": 5}}), "must be a string"),
    ],
)
def test_malformed_file_names_file_and_entry(tmp_path: Path, content: str, expected: str) -> None:
    file = tmp_path / "broken.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(DiscoveryError) as caught:
        discover(PLAIN, make_config(**{"psc.discovery.file": str(file)}))
    assert f"discovery file {file}" in str(caught.value)
    assert expected in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    with pytest.raises(DiscoveryError, match=re.escape(f"discovery file {missing} cannot be read")):
        discover(PLAIN, make_config(**{"psc.discovery.file": str(missing)}))


def test_malformed_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISCOVERY, "{oops")
    with pytest.raises(DiscoveryError, match=f"environment variable {ENV_DISCOVERY} is not valid JSON"):
        discover(PLAIN, make_config())


def test_secure_uri_gets_tls_from_config(tmp_path: Path) -> None:
    path = write_file(tmp_path / "d.json", {SECURE.cluster_prefix: {"connect": "tls1:9093"}})
    config = make_config(
        **{
            "psc.discovery.file": path,
            "psc.ssl.ca.location": "/etc/tls/ca.pem",
            "psc.ssl.certificate.location": "/etc/tls/client.pem",
            "psc.ssl.key.location": "/etc/tls/client.key",
            "psc.ssl.key.password": "hunter2",
        }
    )
    endpoint = discover(SECURE, config)
    assert endpoint.native() == {
        "bootstrap.servers": "tls1:9093",
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/tls/ca.pem",
        "ssl.certificate.location": "/etc/tls/client.pem",
        "ssl.key.location": "/etc/tls/client.key",
        "ssl.key.password": "hunter2",
    }
    assert "hunter2" not in repr(endpoint)


def test_secure_uri_gets_tls_from_entry_and_config_overrides(tmp_path: Path) -> None:
    entry = {
        "connect": "tls1:9093",
        "ssl.ca.location": "/entry/ca.pem",
        "ssl.certificate.location": "/entry/cert.pem",
        "ssl.key.location": "/entry/key.pem",
    }
    path = write_file(tmp_path / "d.json", {SECURE.cluster_prefix: entry})
    from_entry = discover(SECURE, make_config(**{"psc.discovery.file": path}))
    assert from_entry.security == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/entry/ca.pem",
        "ssl.certificate.location": "/entry/cert.pem",
        "ssl.key.location": "/entry/key.pem",
    }
    overridden = discover(SECURE, make_config(**{"psc.discovery.file": path, "psc.ssl.ca.location": "/cfg/ca"}))
    assert overridden.security["ssl.ca.location"] == "/cfg/ca"


def test_secure_without_client_certificate_uses_system_ca(tmp_path: Path) -> None:
    path = write_file(tmp_path / "d.json", {SECURE.cluster_prefix: {"connect": "tls1:9093"}})
    endpoint = discover(SECURE, make_config(**{"psc.discovery.file": path}))
    assert endpoint.security == {"security.protocol": "SSL"}


def test_secure_keeps_sasl_ssl(tmp_path: Path) -> None:
    entry = {"connect": "tls1:9093", "security.protocol": "sasl_ssl", "sasl.mechanism": "PLAIN"}
    path = write_file(tmp_path / "d.json", {SECURE.cluster_prefix: entry})
    endpoint = discover(SECURE, make_config(**{"psc.discovery.file": path}))
    assert endpoint.security == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}


def test_certificate_and_key_come_in_pairs(tmp_path: Path) -> None:
    path = write_file(tmp_path / "d.json", {SECURE.cluster_prefix: {"connect": "tls1:9093"}})
    config = make_config(**{"psc.discovery.file": path, "psc.ssl.certificate.location": "/etc/tls/c.pem"})
    with pytest.raises(DiscoveryError, match=r"ssl\.key\.location is missing"):
        discover(SECURE, config)


def test_security_protocol_must_match_uri(tmp_path: Path) -> None:
    path = write_file(
        tmp_path / "d.json",
        {
            SECURE.cluster_prefix: {"connect": "b:1", "security.protocol": "PLAINTEXT"},
            PLAIN.cluster_prefix: {"connect": "b:1", "security.protocol": "SSL"},
        },
    )
    config = make_config(**{"psc.discovery.file": path})
    with pytest.raises(DiscoveryError, match="secure: URI needs TLS"):
        discover(SECURE, config)
    with pytest.raises(DiscoveryError, match=r"plaintext: URI cannot use security\.protocol=SSL"):
        discover(PLAIN, config)


def test_plaintext_uri_ignores_tls_config() -> None:
    config = make_config(**{"psc.discovery.connect": "b:1", "psc.ssl.ca.location": "/etc/tls/ca.pem"})
    assert discover(PLAIN, config).security == {"security.protocol": "PLAINTEXT"}


class _Provider:
    name = "inventory"

    def __init__(self) -> None:
        self.asked: list[TopicUri] = []

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        self.asked.append(uri)
        return ServiceEndpoint("inv:9092") if uri.cluster == "cluster01" else None


def test_registered_provider_object_and_unregister() -> None:
    provider = _Provider()
    unregister = register_discovery_provider(provider)
    endpoint = discover(PLAIN, make_config())
    assert (endpoint.bootstrap, endpoint.provider) == ("inv:9092", "plugin inventory")
    assert provider.asked == [PLAIN]
    unregister()
    with pytest.raises(DiscoveryError):
        discover(PLAIN, make_config())


class _EntryPoint:
    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.target = target

    def load(self) -> object:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def test_entry_point_plugins_are_tried_last(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [_EntryPoint("broken", ImportError("no module")), _EntryPoint("inventory", _Provider)]
    monkeypatch.setattr(_discovery, "entry_points", lambda group: points if group == "psc.discovery" else [])
    endpoint = discover(PLAIN, make_config())
    assert (endpoint.bootstrap, endpoint.provider) == ("inv:9092", "plugin inventory")
    with pytest.raises(DiscoveryError) as caught:
        discover(parse_topic_uri("rn:kafka:dev:local_dev::other:t"), make_config())
    assert "plugin broken (failed to load: no module)" in str(caught.value)


def test_no_provider_error_names_prefix_and_providers() -> None:
    register_discovery_provider(lambda uri, config: None, name="cmdb")
    with pytest.raises(DiscoveryError) as caught:
        discover(PLAIN, make_config())
    error = caught.value
    assert error.uri == str(PLAIN)
    assert error.providers == [
        "config psc.discovery.connect (not set)",
        f"environment {ENV_DISCOVERY} (not set)",
        f"file (neither psc.discovery.file nor {ENV_DISCOVERY_FILE} set)",
        "plugin cmdb",
    ]
    message = str(error)
    assert repr(PLAIN.cluster_prefix) in message
    assert repr(str(PLAIN)) in message
    for name in error.providers:
        assert name in message


def test_failing_provider_is_wrapped() -> None:
    def explode(uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        raise RuntimeError("cmdb down")

    register_discovery_provider(explode, name="cmdb")
    with pytest.raises(DiscoveryError, match=r"discovery provider plugin cmdb failed .*cmdb down"):
        discover(PLAIN, make_config())


def test_provider_returning_wrong_type_is_rejected() -> None:
    register_discovery_provider(lambda uri, config: "b:1", name="sloppy")  # type: ignore[arg-type,return-value]
    with pytest.raises(DiscoveryError, match="returned str, not a ServiceEndpoint"):
        discover(PLAIN, make_config())


def test_register_rejects_non_providers() -> None:
    with pytest.raises(TypeError):
        register_discovery_provider(42)  # type: ignore[arg-type]


def test_a_secure_uri_for_a_cluster_known_only_as_plaintext_names_the_protocol_mismatch(tmp_path: Path) -> None:
    path = write_file(tmp_path / "d.json", {PLAIN.cluster_prefix: {"connect": "file:1"}})
    secure = parse_topic_uri("secure:/rn:kafka:dev:local_dev::cluster01:events")
    with pytest.raises(DiscoveryError) as caught:
        discover(secure, make_config(**{"psc.discovery.file": path}))
    message = str(caught.value)
    assert message.startswith("protocol mismatch for 'secure:/rn:kafka:dev:local_dev::cluster01:events'")
    assert f"knows cluster 'rn:kafka:dev:local_dev::cluster01:' only as '{PLAIN.cluster_prefix}'" in message
    assert "not with protocol 'secure'" in message
    other = parse_topic_uri("secure:/rn:kafka:dev:local_dev::cluster02:events")  # unknown in any protocol
    with pytest.raises(DiscoveryError, match="no discovery provider knows cluster"):
        discover(other, make_config(**{"psc.discovery.file": path}))
