"""Where checkpoint files live: a local directory (the default) or an S3 prefix. Both write atomically."""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from connectors.errors import JobConfigError


class CheckpointStore(ABC):
    """A flat namespace of small files, each written atomically and whole."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, name: str) -> bytes: ...

    @abstractmethod
    def list(self) -> list[str]: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    def check_writable(self) -> None:
        """Write and remove a probe, so a store the job cannot write fails at start, not at its first checkpoint."""
        name = f".probe-{uuid.uuid4().hex[:8]}"
        try:
            self.put(name, b"probe")
            self.delete(name)
        except Exception as exc:
            raise JobConfigError(f"checkpoint store {self!r} is not writable: {exc}") from exc


class LocalDirectoryStore(CheckpointStore):
    """Temp file, fsync, rename, then the directory fsynced: a crash leaves the old file or the new one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def put(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / name)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def list(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.path)!r})"


class S3Store(CheckpointStore):
    """One PUT per file (atomic in S3), objects under ``prefix``; any S3 endpoint through ``endpoint_url``."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client if client is not None else boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def get(self, name: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read())

    def list(self) -> list[str]:
        names: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            names.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        return sorted(n for n in names if "/" not in n)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"


def open_store(url: str, job: str, *, s3_endpoint_url: str | None = None) -> CheckpointStore:
    """``file:DIR``, ``s3://bucket/prefix`` or a plain path; each job gets its own sub-directory or prefix."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise JobConfigError(f"checkpoint store {url!r} names no bucket (expected s3://bucket/prefix)")
        prefix = "/".join(p for p in (parsed.path.strip("/"), job) if p)
        return S3Store(parsed.netloc, prefix, endpoint_url=s3_endpoint_url or os.environ.get("S3_ENDPOINT_URL"))
    if parsed.scheme in ("file", ""):
        path = url[len("file:") :] if parsed.scheme == "file" else url
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise JobConfigError(f"checkpoint store {url!r} names no directory")
        return LocalDirectoryStore(Path(path) / job)
    raise JobConfigError(f"checkpoint store {url!r}: unknown scheme {parsed.scheme!r} (use file: or s3://)")
