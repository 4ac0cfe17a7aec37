"""Each confluent-kafka program and its three-edit PSC port print the same against the real broker."""

from __future__ import annotations

import pytest

from tests.migration import check_edits
from tests.migration.pairs import PROGRAMS, SIDES, difference, run
from tests.services import Services


def test_every_program_has_a_port_and_a_topic_plan() -> None:
    names = {original.stem for original, _ in check_edits.pairs()}
    assert names == set(PROGRAMS)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_port_prints_what_the_original_prints(services: Services, name: str) -> None:
    original, port = (run(side, name, services.kafka_bootstrap_servers, services.psc_discovery_file) for side in SIDES)
    assert original.returncode == 0, original.stderr
    assert original.stdout.strip(), "the original printed nothing, so there is nothing to compare"
    problem = difference(original, port)
    assert not problem, f"{name}: the PSC port differs from its original\n{problem}"
