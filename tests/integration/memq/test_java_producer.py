"""The reference Java client (memq-client 0.2.20, wire protocol v3) against our broker and our objects.

Maven fetches the client and its dependencies into ~/.cache/kstream-toolkit/maven (once; offline after
that) and javac compiles two small programs at test time. The reference producer writes through our
broker, and every record it wrote is read back from storage with its key, value, headers and message id
intact. The reference reader (MemqLogMessageIterator) decodes the objects our broker stored for our producer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from memq._producer import Producer
from tests.integration.memq.brokers import BrokerProcess, broker_config, read_notifications, stored_records

ARTIFACT = "com.pinterest.memq:memq-client:0.2.20"
CACHE = Path.home() / ".cache" / "kstream-toolkit"
REPOSITORY = CACHE / "maven"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kstream-toolkit.it</groupId>
  <artifactId>memq-java-producer</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>com.pinterest.memq</groupId>
      <artifactId>memq-client</artifactId>
      <version>0.2.20</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-nop</artifactId>
      <version>1.7.30</version>
    </dependency>
  </dependencies>
</project>
"""

PROGRAM = """
import com.pinterest.memq.client.commons.Compression;
import com.pinterest.memq.client.commons.serde.ByteArraySerializer;
import com.pinterest.memq.client.producer.MemqWriteResult;
import com.pinterest.memq.client.producer2.MemqProducer;
import com.pinterest.memq.commons.MessageId;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class ProduceRecords {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    Compression compression = Compression.valueOf(args[3]);
    MemqProducer<byte[], byte[]> producer = new MemqProducer.Builder<byte[], byte[]>()
        .cluster("it").topic(topic).bootstrapServers(bootstrap)
        .keySerializer(new ByteArraySerializer()).valueSerializer(new ByteArraySerializer())
        .compression(compression).lingerMs(50).maxPayloadBytes(64 * 1024).sendRequestTimeout(30000)
        .build();
    List<Future<MemqWriteResult>> futures = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      Map<String, byte[]> headers = new HashMap<>();
      headers.put("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
      headers.put("kind", "java".getBytes(StandardCharsets.UTF_8));
      byte[] key = ("key-" + i).getBytes(StandardCharsets.UTF_8);
      StringBuilder value = new StringBuilder("value-" + i + "-");
      for (int j = 0; j < i % 50; j++) value.append((char) ('a' + j % 26));
      MessageId id = new MessageId(String.format("id%06d", i).getBytes(StandardCharsets.UTF_8));
      byte[] bytes = value.toString().getBytes(StandardCharsets.UTF_8);
      futures.add(producer.write(id, headers, key, bytes, 1700000000000L + i));
    }
    producer.flush();
    int ok = 0;
    for (Future<MemqWriteResult> f : futures) {
      f.get(60, TimeUnit.SECONDS);
      ok++;
    }
    producer.close();
    System.out.println("ACKED " + ok);
  }
}
"""


READER = """
import com.codahale.metrics.MetricRegistry;
import com.google.gson.JsonObject;
import com.pinterest.memq.client.commons.MemqLogMessageIterator;
import com.pinterest.memq.client.commons.serde.ByteArrayDeserializer;
import com.pinterest.memq.commons.MemqLogMessage;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Map;
import java.util.TreeMap;

public class ReadObjects {
  static String hex(byte[] bytes) {
    if (bytes == null) return "null";
    StringBuilder out = new StringBuilder();
    for (byte b : bytes) out.append(String.format("%02x", b));
    return out.toString();
  }

  public static void main(String[] args) throws Exception {
    for (String path : args) {
      byte[] data = Files.readAllBytes(Paths.get(path));
      JsonObject notification = new JsonObject();
      notification.addProperty("topic", "any");
      notification.addProperty("objectSize", data.length);
      notification.addProperty("npi", 0);
      notification.addProperty("npo", 0L);
      notification.addProperty("nrts", 0L);
      MemqLogMessageIterator<byte[], byte[]> records = new MemqLogMessageIterator<>("it", "it",
          new DataInputStream(new ByteArrayInputStream(data)), notification, new ByteArrayDeserializer(),
          new ByteArrayDeserializer(), new MetricRegistry(), false, null);
      while (records.hasNext()) {
        MemqLogMessage<byte[], byte[]> record = records.next();
        StringBuilder headers = new StringBuilder();
        Map<String, byte[]> sorted = new TreeMap<>(record.getHeaders() == null ? Map.of() : record.getHeaders());
        for (Map.Entry<String, byte[]> e : sorted.entrySet()) {
          headers.append(e.getKey()).append('=').append(hex(e.getValue())).append(';');
        }
        System.out.println("RECORD " + hex(record.getKey()) + " " + hex(record.getValue()) + " "
            + record.getWriteTimestamp() + " " + headers);
      }
    }
  }
}
"""


def _classpath(workdir: Path) -> str:
    """The client's runtime classpath, resolved by Maven into the toolkit's cache."""
    mvn = shutil.which("mvn")
    assert mvn is not None, "Maven (mvn) is needed: scripts/install-system-packages installs it"
    project = workdir / "maven"
    project.mkdir()
    (project / "pom.xml").write_text(POM)
    REPOSITORY.mkdir(parents=True, exist_ok=True)
    out = project / "classpath.txt"
    command = [
        mvn,
        "-q",
        "-B",
        f"-Dmaven.repo.local={REPOSITORY}",
        "dependency:build-classpath",
        f"-Dmdep.outputFile={out}",
    ]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"Maven could not resolve {ARTIFACT}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return out.read_text().strip()


@pytest.fixture(scope="module")
def java_program(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    workdir = tmp_path_factory.mktemp("java")
    classpath = _classpath(workdir)
    sources = [workdir / "ProduceRecords.java", workdir / "ReadObjects.java"]
    sources[0].write_text(PROGRAM)
    sources[1].write_text(READER)
    javac = shutil.which("javac")
    assert javac is not None, "a JDK (javac) is needed: scripts/install-system-packages installs it"
    result = subprocess.run(
        [javac, "-cp", classpath, "-d", str(workdir), *map(str, sources)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return classpath + os.pathsep + str(workdir), workdir


@pytest.mark.parametrize("compression", ["ZSTD", "GZIP"])
def test_reference_java_producer_writes_through_our_broker(
    compression: str,
    java_program: tuple[str, Path],
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    classpath, _ = java_program
    notify = new_topic()
    topics = [{"name": "java-topic", "notification_topic": notify, "batch_max_ms": 300}]
    broker = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap), tmp_path).start()
    count = 300
    try:
        result = subprocess.run(
            ["java", "-cp", classpath, "ProduceRecords", broker.address, "java-topic", str(count), compression],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        broker.stop()
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}\n{broker.log()[-3000:]}"
    assert f"ACKED {count}" in result.stdout
    records = {record.key: record for _n, record in stored_records(read_notifications(kafka_bootstrap, notify))}
    assert len(records) == count
    for i in range(count):
        record = records[b"key-%d" % i]
        expected_value = b"value-%d-" % i + bytes(ord("a") + j % 26 for j in range(i % 50))
        assert record.value == expected_value
        assert dict(record.headers) == {"index": str(i).encode(), "kind": b"java"}
        assert record.message_id == b"id%06d" % i
        assert record.timestamp_ms == 1700000000000 + i


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_reference_reader_decodes_objects_our_broker_stored(
    compression: Literal["zstd", "gzip", "none"],
    java_program: tuple[str, Path],
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    classpath, _ = java_program
    notify = new_topic()
    topics = [{"name": "ours", "notification_topic": notify, "batch_max_ms": 300}]
    broker = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap), tmp_path).start()
    expected: list[tuple[bytes | None, bytes, int, list[tuple[str, bytes]]]] = []
    try:
        with Producer(brokers=[broker.address], linger_ms=20, compression=compression) as producer:
            futures = []
            for i in range(200):
                key = None if i % 7 == 0 else b"key-%d" % i
                headers = {"n": b"%d" % i, "bin": bytes([i % 256, 0, 255])} if i % 3 else None
                value = b"v" * (i % 40) + bytes([i % 256])
                futures.append(producer.send("ours", value, key=key, headers=headers, timestamp=1700000000000 + i))
                expected.append((key, value, 1700000000000 + i, sorted((headers or {}).items())))
            for future in futures:
                future.result(30)
    finally:
        broker.stop()
    paths = [n.path for n in read_notifications(kafka_bootstrap, notify)]
    assert paths and all(paths)
    result = subprocess.run(
        ["java", "-cp", classpath, "ReadObjects", *map(str, paths)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-4000:]
    decoded: list[tuple[bytes | None, bytes, int, list[tuple[str, bytes]]]] = []
    for line in result.stdout.splitlines():
        if not line.startswith("RECORD "):
            continue
        _tag, key_hex, value_hex, timestamp, *rest = line.split(" ")
        header_text = rest[0] if rest else ""
        pairs = sorted(
            (name, bytes.fromhex(value)) for name, value in (h.split("=") for h in header_text.split(";") if h)
        )
        key = None if key_hex == "null" else bytes.fromhex(key_hex)
        decoded.append((key, bytes.fromhex(value_hex), int(timestamp), pairs))
    assert sorted(decoded, key=lambda r: r[2]) == expected
