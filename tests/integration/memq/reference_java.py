"""The reference MemQ Java client (Maven Central `com.pinterest.memq:memq-client:0.2.20`) for interop tests.

Maven fetches it with its dependencies into `~/.cache/kstream-toolkit/maven`; Java sources beside this module
are compiled against it with javac at test time.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ARTIFACT = ("com.pinterest.memq", "memq-client", "0.2.20")
CACHE = Path.home() / ".cache" / "kstream-toolkit"
REPOSITORY = CACHE / "maven"
SOURCES = Path(__file__).resolve().parent / "java"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kstream-toolkit.interop</groupId>
  <artifactId>memq-reference</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>{0}</groupId><artifactId>{1}</artifactId><version>{2}</version></dependency>
  </dependencies>
</project>
"""


def _tools() -> None:
    missing = [tool for tool in ("mvn", "javac", "java") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the reference interop tests need {', '.join(missing)}: run scripts/install-system-packages")


def classpath() -> str:
    """The reference client's classpath, resolving it with Maven on first use (cached afterwards)."""
    _tools()
    project = CACHE / "memq-reference-{2}".format(*ARTIFACT)
    listing = project / "classpath.txt"
    if not listing.is_file():
        project.mkdir(parents=True, exist_ok=True)
        (project / "pom.xml").write_text(_POM.format(*ARTIFACT))
        command = [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(project / "pom.xml"),
            f"-Dmaven.repo.local={REPOSITORY}",
            "-Dmaven.wagon.http.retryHandler.count=2",
            "dependency:build-classpath",
            f"-Dmdep.outputFile={listing}.tmp",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.fail(f"Maven could not resolve {':'.join(ARTIFACT)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        Path(f"{listing}.tmp").rename(listing)
    return listing.read_text().strip()


def compile_java(source: str, out: Path) -> str:
    """Compile `java/<source>` against the reference client into `out`; return the classpath to run it."""
    cp = classpath()
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["javac", "-cp", cp, "-d", str(out), str(SOURCES / source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"javac {source} failed:\n{done.stderr[-3000:]}")
    return f"{cp}:{out}"


def java_command(classpath: str, main_class: str, *args: str) -> list[str]:
    """The command that runs `main_class`; the reference decodes header names with the default charset."""
    return ["java", "-Dfile.encoding=UTF-8", "-cp", classpath, main_class, *args]
