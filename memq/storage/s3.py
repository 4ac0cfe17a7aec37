"""`s3://bucket/prefix`: objects in S3 or any S3-compatible endpoint, through boto3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

import boto3
import botocore.exceptions
from botocore.config import Config

from memq._errors import ObjectNotFoundError, StorageError
from memq._format import Notification
from memq.storage.base import Buffer, StorageHandler, register_storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Storage"]

MIN_PART_SIZE = 5 << 20  # S3's floor for every part but the last
_OPTIONS = {
    "endpoint_url",
    "region",
    "access_key_id",
    "secret_access_key",
    "multipart_threshold",
    "part_size",
    "max_attempts",
    "timeout_s",
    "prefix",
}


@register_storage("s3")
class S3Storage(StorageHandler):
    """Objects up to `multipart_threshold` bytes go up in one PUT, larger ones as a multipart upload of
    `part_size` parts (aborted if any part fails, so no partial object is ever visible). Reads are ranged GETs.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = 16 << 20,
        part_size: int = 8 << 20,
        max_attempts: int = 3,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(prefix)
        if not bucket:
            raise StorageError("S3 storage needs a bucket: s3://bucket/prefix")
        if part_size < MIN_PART_SIZE:
            raise StorageError(f"part_size {part_size} is below S3's minimum of {MIN_PART_SIZE} bytes")
        if multipart_threshold < part_size:
            raise StorageError(f"multipart_threshold {multipart_threshold} is below part_size {part_size}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._client = _client(endpoint_url, region, access_key_id, secret_access_key, max_attempts, timeout_s)
        self._client.meta.events.register("before-send.s3", self._sending)

    def _sending(self, event_name: str, **_: Any) -> None:
        if self.on_request is not None:
            self.on_request(event_name.rpartition(".")[2])  # before-send.s3.PutObject -> PutObject

    @classmethod
    def from_url(cls, url: SplitResult, options: Mapping[str, str]) -> S3Storage:
        if unknown := set(options) - _OPTIONS:
            raise StorageError(f"S3 storage has no option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}")
        try:
            sizes = {
                name: int(options[name])
                for name in ("multipart_threshold", "part_size", "max_attempts")
                if name in options
            }
            timeout_s = float(options.get("timeout_s", 30.0))
        except ValueError as exc:
            raise StorageError(f"S3 storage option is not a number: {exc}") from None
        return cls(
            url.netloc,
            options.get("prefix", url.path),
            endpoint_url=options.get("endpoint_url"),
            region=options.get("region"),
            access_key_id=options.get("access_key_id"),
            secret_access_key=options.get("secret_access_key"),
            timeout_s=timeout_s,
            **sizes,
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def put(self, key: str, parts: Sequence[Buffer]) -> None:
        total = sum(len(part) for part in parts)
        try:
            if total <= self.multipart_threshold:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=b"".join(parts))
            else:
                self._put_multipart(key, parts)
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"PUT of {total} bytes failed: {exc}", key) from exc
        except botocore.exceptions.ClientError as exc:
            raise StorageError(f"PUT of {total} bytes failed: {_code(exc)} {exc}", key) from exc

    def _put_multipart(self, key: str, parts: Sequence[Buffer]) -> None:
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            done = []
            for number, chunk in enumerate(_chunks(parts, self.part_size), start=1):
                answer = self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},  # type: ignore[typeddict-item]
            )
        except BaseException:
            # What abort cannot remove, the bucket's lifecycle rule for incomplete uploads does.
            with contextlib.suppress(botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def read(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"invalid range start={start} length={length}")
        if length == 0:
            return b""
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
            return answer["Body"].read()
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(f"no such object in bucket {self.bucket}", key) from None
            if code == "InvalidRange":
                return b""  # the range starts past the end
            raise StorageError(f"GET bytes {start}+{length} failed: {code} {exc}", key) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"GET bytes {start}+{length} failed: {exc}", key) from exc

    def size(self, key: str) -> int:
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(f"no such object in bucket {self.bucket}", key) from None
            raise StorageError(f"HEAD failed: {_code(exc)} {exc}", key) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"HEAD failed: {exc}", key) from exc

    def notification(
        self, key: str, *, topic: str, header_size: int, messages_size: int, message_count: int, attempts: int
    ) -> Notification:
        return Notification(
            topic=topic,
            header_size=header_size,
            messages_size=messages_size,
            message_count=message_count,
            bucket=self.bucket,
            key=key,
            attempts=attempts,
        )

    def key_of(self, notification: Notification) -> str:
        if notification.key is None or notification.bucket != self.bucket:
            raise StorageError(f"{notification.location} is not in bucket {self.bucket}")
        return notification.key

    def close(self) -> None:
        self._client.close()


def _client(
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    max_attempts: int,
    timeout_s: float,
) -> S3Client:
    session = boto3.session.Session(
        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region or "us-east-1"
    )
    settings: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": max_attempts},
        "connect_timeout": timeout_s,
        "read_timeout": timeout_s,
        "s3": {"addressing_style": "path"} if endpoint_url else {},
    }
    if session.get_credentials() is None and endpoint_url:
        # A local S3-compatible endpoint (moto, a test double) and no credentials anywhere: sign with placeholders
        # rather than fail on the first request; a real endpoint rejects them with a clear 403.
        session = boto3.session.Session(
            aws_access_key_id="memq", aws_secret_access_key="memq", region_name=region or "us-east-1"
        )
    return session.client("s3", endpoint_url=endpoint_url, config=Config(**settings))


def _chunks(parts: Sequence[Buffer], size: int) -> Iterator[bytes]:
    """The concatenation of `parts` in pieces of exactly `size` bytes (the last may be shorter)."""
    pending = bytearray()
    for part in parts:
        view = memoryview(part)
        while view:
            take = size - len(pending)
            pending += view[:take]
            view = view[take:]
            if len(pending) == size:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
