"""The demo's connectors part against the real broker: the job process killed and restarted, output checked."""

from __future__ import annotations

import pytest

from demos import connectors
from demos._common import Services as DemoServices
from tests.services import Services


def test_the_demo_job_killed_mid_run_and_restarted_writes_every_order_once(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = DemoServices.from_mapping(
        {"KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap_servers, "PSC_DISCOVERY_FILE": services.psc_discovery_file}
    )
    connectors.run(demo)  # raises DemoFailure on a missing, duplicated or miscounted order
    out = capsys.readouterr().out
    assert f"{connectors.ORDERS} records for {connectors.ORDERS} orders: 0 missing, 0 duplicated" in out
