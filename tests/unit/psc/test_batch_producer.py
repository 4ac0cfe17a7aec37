"""Where ``psc.BatchProducer`` cannot queue batches in C it says so, and refuses clusters that are not Kafka."""

from __future__ import annotations

import os
import subprocess
import sys


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


def test_a_memq_cluster_is_refused_before_any_client_is_made() -> None:
    # In a process of its own with the speedups on, so it also runs in the fallback pass of the unit tests.
    code = (
        "import psc, pytest\n"
        "with pytest.raises(psc.ProducerError, match='needs a Kafka cluster'):\n"
        "    psc.BatchProducer({}, 'plaintext:/rn:memq:local:local_dev::memq01:t')\n"
        "with pytest.raises(psc.ProducerError, match='takes no callbacks'):\n"
        "    psc.BatchProducer({'error_cb': print}, 'plaintext:/rn:kafka:local:local_dev::cluster01:t')\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "PSC_NO_SPEEDUPS"}
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
