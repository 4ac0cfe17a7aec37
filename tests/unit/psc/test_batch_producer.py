"""Where ``psc.BatchProducer`` cannot queue batches in C it says so, and refuses clusters that are not Kafka."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import psc


def test_without_speedups_it_is_unavailable_and_says_why() -> None:
    code = (
        "import psc\n"
        "assert not psc.BatchProducer.available()\n"
        "try:\n"
        "    psc.BatchProducer({}, 'plaintext:/rn:kafka:local:local_dev::cluster01:t')\n"
        "except psc.ProducerError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PSC_NO_SPEEDUPS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "batch producing is unavailable: PSC_NO_SPEEDUPS is set" in out.stdout


@pytest.mark.skipif(not psc.BatchProducer.available(), reason="psc._rdkafka is not built here")
def test_a_memq_cluster_is_refused_before_any_client_is_made() -> None:
    with pytest.raises(psc.ProducerError, match="needs a Kafka cluster"):
        psc.BatchProducer({}, "plaintext:/rn:memq:local:local_dev::memq01:t")
    with pytest.raises(psc.ProducerError, match="takes no callbacks"):
        psc.BatchProducer({"error_cb": print}, "plaintext:/rn:kafka:local:local_dev::cluster01:t")
