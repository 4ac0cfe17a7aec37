from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from memq import ObjectNotFoundError, StorageError
from memq._format import Notification
from memq.storage import FileStorage, S3Storage, StorageHandler, hash_prefix, open_storage
from memq.storage.s3 import _chunks


def test_file_url_opens_file_storage(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}?prefix=cluster1")
    assert isinstance(storage, FileStorage)
    assert storage.root == tmp_path.resolve()
    assert storage.url == f"file://{tmp_path.resolve()}"
    assert storage.prefix == "cluster1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/var/lib/memq", "has no scheme"),
        ("gopher://x/y", "no handler for scheme 'gopher'"),
        ("file://relative/dir", "names host 'relative'"),
        ("file:relative", "needs an absolute path"),
        ("file:///tmp/x?colour=blue", "takes no option"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://bucket?flavour=x", "has no option"),
        ("s3://bucket?part_size=lots", "not a number"),
        ("s3://bucket?part_size=1024", "below S3's minimum"),
        ("s3://bucket?x", "malformed query"),
    ],
)
def test_bad_storage_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=re.escape(message)):
        open_storage(url)


def test_s3_url_options() -> None:
    storage = open_storage("s3://bucket/some/prefix/?endpoint_url=http://127.0.0.1:1&part_size=6291456")
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.part_size) == ("bucket", "some/prefix", 6 << 20)
    assert storage.endpoint_url == "http://127.0.0.1:1"
    assert storage.url == "s3://bucket/some/prefix"


def test_object_keys_follow_the_reference_layout_and_spread_over_256_prefixes(tmp_path: Path) -> None:
    storage: StorageHandler = FileStorage(tmp_path, prefix="east")
    key = storage.object_key(
        "clicks", client_request_id=3, server_request_id=99, attempt=1, host="broker-1", epoch_ms=1700000000000
    )
    assert re.fullmatch(r"[0-9a-f]{2}/east/clicks/3_99_1700000000000_1_broker-1", key)
    assert key.startswith(hash_prefix("clicks/3_99_1700000000000_1_broker-1"))
    prefixes = Counter(
        storage.object_key("t", client_request_id=i, server_request_id=0, attempt=0, host="h", epoch_ms=0)[:2]
        for i in range(20_000)
    )
    assert len(prefixes) == 256
    assert max(prefixes.values()) < 2 * 20_000 / 256  # evenly spread, even for a counter


def test_file_storage_put_read_size(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    storage.put("ab/t/object", [b"0123", memoryview(b"456789"), bytearray(b"")])
    assert storage.size("ab/t/object") == 10
    assert storage.read("ab/t/object", 0, 4) == b"0123"
    assert storage.read("ab/t/object", 8, 10) == b"89"
    assert storage.read("ab/t/object", 20, 5) == b""
    storage.put("ab/t/object", [b"new"])
    assert storage.read("ab/t/object", 0, 100) == b"new"
    assert [p.name for p in (tmp_path / "ab" / "t").iterdir()] == ["object"]  # no temporary left behind


def test_file_storage_writes_more_parts_than_one_writev_takes(tmp_path: Path) -> None:
    parts = [bytes([i % 251]) * (i % 7) for i in range(3000)]  # some empty; over the 1024 buffers of a writev
    storage = FileStorage(tmp_path)
    storage.put("ab/t/many", parts)
    assert storage.read("ab/t/many", 0, 1 << 20) == b"".join(parts)


def test_file_storage_missing_object_and_bad_keys(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    with pytest.raises(ObjectNotFoundError) as caught:
        storage.read("00/t/missing", 0, 1)
    assert caught.value.key == "00/t/missing"
    with pytest.raises(ObjectNotFoundError):
        storage.size("00/t/missing")
    for key in ("../escape", "/abs", "a//b", "", "a/./b"):
        with pytest.raises(StorageError, match="invalid object key"):
            storage.put(key, [b"x"])


def test_file_storage_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"a file where a directory should be")
    with pytest.raises(StorageError, match="cannot write object"):
        FileStorage(tmp_path).put("blocker/t/object", [b"x"])


def test_file_notification_names_the_path_and_maps_back(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    notification = storage.notification(
        "ab/t/o", topic="t", header_size=20, messages_size=100, message_count=1, attempts=0
    )
    assert notification.path == str(tmp_path.resolve() / "ab" / "t" / "o")
    assert storage.key_of(Notification.from_json(notification.to_json())) == "ab/t/o"
    with pytest.raises(StorageError, match="outside"):
        storage.key_of(Notification(topic="t", header_size=8, messages_size=0, message_count=1, path="/elsewhere/x"))
    s3 = Notification(topic="t", header_size=8, messages_size=0, message_count=1, bucket="b", key="k")
    with pytest.raises(StorageError, match="is not a file"):
        storage.key_of(s3)


@pytest.mark.parametrize("sizes", [[0], [1], [5, 5], [3, 11, 2], [10, 0, 10], [25]])
def test_multipart_chunks_are_exact(sizes: list[int]) -> None:
    parts = [bytes([i]) * size for i, size in enumerate(sizes)]
    chunks = list(_chunks(parts, 5))
    assert b"".join(chunks) == b"".join(parts)
    assert all(len(chunk) == 5 for chunk in chunks[:-1])
    assert all(chunks)
