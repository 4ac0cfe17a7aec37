"""Singer: ``singer run`` ships a log file while it is written and rotated; every line is read back with PSC."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path

import psc
from demos._common import KAFKA_CLUSTER, Child, DemoFailure, Services, create_topic, delete_topic, step

LINES_PER_FILE = 1500
FILES = 3  # app.log.2 and app.log.1 are rotated away by rename ("create" mode); app.log stays live


def run(services: Services) -> None:
    run_id = uuid.uuid4().hex[:8]
    topic = f"demo-singer-{run_id}"
    create_topic(services.kafka_bootstrap, topic, 3)
    try:
        with tempfile.TemporaryDirectory(prefix="demo-singer-") as workdir:
            ship(services, Path(workdir), KAFKA_CLUSTER + topic, run_id)
    finally:
        delete_topic(services.kafka_bootstrap, topic)


def ship(services: Services, workdir: Path, topic_uri: str, run_id: str) -> None:
    logs, config = workdir / "logs", workdir / "singer"
    logs.mkdir()
    write_config(config, logs, topic_uri, services.discovery_file)
    step("singer: ship a log file while it is written and rotated")
    with Child("singer", ["singer", "run", "--config", str(config)], workdir) as agent:
        print(f"singer run --config {config} (pid {agent.pid}) -> {topic_uri}")
        written, rotations, finished = write_and_rotate(logs / "app.log", run_id)
        print(f"wrote {written} lines in {FILES} files, rotated {rotations} times while the agent ran")

        step("singer: read every line back with psc.Consumer")
        lines, duplicates = read_back(services, topic_uri, run_id, written)
        lag = time.monotonic() - finished
        code = agent.stop()
    missing = written - len(lines)
    print(f"read {len(lines)} distinct lines of {written} ({duplicates} duplicates) {lag:.1f} s after the last write")
    print(f"agent stopped with SIGTERM (exit {code})")
    if missing or code != 0:
        raise DemoFailure(f"{missing} lines missing, agent exit code {code}")
    print("every line shipped, across both rotations")


def write_config(config: Path, logs: Path, topic_uri: str, discovery: Path) -> None:
    (config / "conf.d").mkdir(parents=True)
    (config / "singer.toml").write_text(
        f'state_dir = "{config / "state"}"\npoll_interval_s = 0.2\n\n'
        f'[producer]\n"psc.discovery.file" = "{discovery}"\n"psc.producer.linger.ms" = "20"\n'
    )
    (config / "conf.d" / "app.toml").write_text(
        f'dir = "{logs}"\npattern = \'app\\.log(\\.\\d+)?\'\ntopic_uri = "{topic_uri}"\n'
        "batch_records = 500\nbatch_timeout_s = 10\nrotation_grace_s = 0.5\n"
    )


def write_and_rotate(live: Path, run_id: str) -> tuple[int, int, float]:
    """Write lines over about two seconds, renaming the file away twice as logrotate's ``create`` does."""
    written = rotations = 0
    for file_number in range(FILES):
        with live.open("a") as out:
            for i in range(LINES_PER_FILE):
                out.write(json.dumps({"run": run_id, "line": written, "file": file_number, "pad": "x" * (i % 40)}))
                out.write("\n")
                written += 1
                if i % 100 == 99:
                    out.flush()
                    time.sleep(0.04)
        if file_number < FILES - 1:
            for older in sorted(live.parent.glob("app.log.*"), reverse=True):
                older.rename(live.with_name(f"app.log.{int(older.suffix[1:]) + 1}"))
            live.rename(live.with_name("app.log.1"))
            rotations += 1
    return written, rotations, time.monotonic()


def read_back(services: Services, topic_uri: str, run_id: str, expected: int) -> tuple[set[int], int]:
    config = {
        "psc.project": "toolkit-demo",
        "psc.discovery.file": str(services.discovery_file),
        "psc.consumer.group.id": f"demo-singer-{run_id}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    lines: set[int] = set()
    duplicates = 0
    with psc.Consumer(config) as consumer:
        consumer.subscribe([topic_uri])
        deadline = time.monotonic() + 60
        while len(lines) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                number = json.loads(message.value() or b"{}")["line"]
                duplicates += number in lines
                lines.add(number)
    return lines, duplicates
