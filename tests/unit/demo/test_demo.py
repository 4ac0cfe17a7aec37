"""demo.py runs every part, reports each, and exits non-zero when any part fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from demos._common import DemoFailure, Services
from demos.pacer import toml

DEMO_PY = Path(__file__).resolve().parents[3] / "demo.py"


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_main", DEMO_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    discovery = tmp_path / "discovery.json"
    discovery.write_text("{}")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("PSC_DISCOVERY_FILE", str(discovery))
    return module


def test_a_failing_part_makes_the_demo_exit_1_and_the_others_still_run(
    demo: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[str] = []

    def fails(services: Services) -> None:
        ran.append("first")
        raise DemoFailure("3 lines missing")

    def breaks(services: Services) -> None:
        ran.append("second")
        raise RuntimeError("boom")

    def passes(services: Services) -> None:
        ran.append("third")

    monkeypatch.setattr(demo, "PARTS", {"first": fails, "second": breaks, "third": passes})
    assert demo.main([]) == 1
    assert ran == ["first", "second", "third"]
    out = capsys.readouterr().out
    assert "first   FAILED: 3 lines missing" in out
    assert "second  FAILED: RuntimeError('boom')" in out
    assert "third   ok" in out


def test_all_parts_passing_exit_0_and_unknown_parts_are_refused(
    demo: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "PARTS", {"only": lambda services: None})
    assert demo.main(["only"]) == 0
    assert demo.main(["nope"]) == 2
    assert "unknown part(s) nope" in capsys.readouterr().err


def test_demo_parts_cover_every_package() -> None:
    spec = importlib.util.spec_from_file_location("demo_parts", DEMO_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert list(module.PARTS) == ["kafka", "memq", "singer", "pacer", "connectors"]


def test_pacer_broker_settings_render_as_toml_the_broker_loads(tmp_path: Path) -> None:
    from pacer.broker._config import BrokerConfig

    path = tmp_path / "broker.toml"
    path.write_text(toml({"storage": ["mysql://root@h:3306/d"], "control_topic": "plaintext:/rn:kafka:a:b_c::d:t",
                          "control_partitions": 4, "psc": {"psc.discovery.file": "/x.json"}}))  # fmt: skip
    config = BrokerConfig.load(path)
    assert config.control_partitions == 4 and config.psc == {"psc.discovery.file": "/x.json"}
    assert list(config.storage) == ["mysql://root@h:3306/d"]
