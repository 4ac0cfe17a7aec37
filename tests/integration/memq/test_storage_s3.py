from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest

from memq import ObjectNotFoundError, StorageError
from memq._format import Notification
from memq.storage import S3Storage, open_storage
from tests.services import Services


@pytest.fixture
def bucket(services: Services) -> Iterator[str]:
    name = f"memq-storage-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


def _storage(services: Services, bucket: str, **options: str) -> S3Storage:
    storage = open_storage(f"s3://{bucket}/pre", endpoint_url=services.s3_endpoint_url, **options)
    assert isinstance(storage, S3Storage)
    return storage


def test_put_and_ranged_reads(services: Services, bucket: str) -> None:
    storage = _storage(services, bucket)
    key = storage.object_key("t", client_request_id=1, server_request_id=2, attempt=0, host="h")
    assert key.split("/")[1:3] == ["pre", "t"]
    storage.put(key, [b"index", memoryview(b"-message-1"), b"-message-2"])
    assert storage.size(key) == 25
    assert storage.read(key, 0, 5) == b"index"
    assert storage.read(key, 5, 10) == b"-message-1"
    assert storage.read(key, 20, 100) == b"age-2"
    assert storage.read(key, 30, 5) == b""
    notification = storage.notification(key, topic="t", header_size=5, messages_size=20, message_count=2, attempts=1)
    assert storage.key_of(Notification.from_json(notification.to_json())) == key


def test_large_objects_go_up_in_parts(services: Services, bucket: str) -> None:
    storage = _storage(services, bucket, multipart_threshold=str(5 << 20), part_size=str(5 << 20))
    sent: list[str] = []
    storage.on_request = sent.append
    parts = [os.urandom(3 << 20), os.urandom(4 << 20), os.urandom(5 << 20 | 12345)]
    whole = b"".join(parts)
    storage.put("aa/pre/t/big", parts)
    assert sent == ["CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    storage.put("aa/pre/t/small", [b"x"])
    assert sent[-1] == "PutObject" and len(sent) == 6
    s3 = storage._client
    etag = s3.head_object(Bucket=bucket, Key="aa/pre/t/big")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart upload of three parts
    assert storage.size("aa/pre/t/big") == len(whole)
    for start, length in [(0, 100), ((5 << 20) - 10, 20), (len(whole) - 7, 50), (123456, 4 << 20)]:
        assert storage.read("aa/pre/t/big", start, length) == whole[start : start + length]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_missing_object_and_missing_bucket(services: Services, bucket: str) -> None:
    storage = _storage(services, bucket)
    with pytest.raises(ObjectNotFoundError) as caught:
        storage.read("00/pre/t/none", 0, 10)
    assert caught.value.key == "00/pre/t/none"
    with pytest.raises(ObjectNotFoundError):
        storage.size("00/pre/t/none")
    gone = _storage(services, f"{bucket}-absent", max_attempts="1")
    with pytest.raises(StorageError, match="PUT of 1 bytes failed"):
        gone.put("k", [b"x"])
    big = _storage(
        services, f"{bucket}-absent", multipart_threshold=str(5 << 20), part_size=str(5 << 20), max_attempts="1"
    )
    with pytest.raises(StorageError, match="PUT of"):
        big.put("k", [bytes(6 << 20)])


def test_inspect_reads_an_s3_object(services: Services, bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from memq._format import Compression, Record, build_object, encode_message
    from memq._inspect import main

    message = encode_message(
        [Record(b"v", key=b"k")], compression=Compression.ZSTD, producer_epoch=1, request_id=1, address=b"\x7f\0\0\1"
    )
    _storage(services, bucket).put("ab/pre/t/o", [build_object([message])])
    assert main(["--json", "--endpoint-url", services.s3_endpoint_url, f"s3://{bucket}/ab/pre/t/o"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (lines[0]["key"], lines[0]["value"]) == ("aw==", "dg==")
    assert lines[1]["summary"]["records"] == 1
    assert main(["--endpoint-url", services.s3_endpoint_url, f"s3://{bucket}/ab/pre/t/missing"]) == 2
    assert "no such object" in capsys.readouterr().err
