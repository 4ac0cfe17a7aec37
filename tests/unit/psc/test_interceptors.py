from __future__ import annotations

import struct

from psc.interceptors import (
    PRODUCE_TS_HEADER,
    InterceptorChain,
    InterceptorRecord,
    ProduceTimestampInterceptor,
    RawInterceptor,
    RawRecord,
    TypedInterceptor,
    TypedRecord,
    decode_produce_ts,
    encode_produce_ts,
)

URI = "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:topic01"


def raw(headers: list[tuple[str, bytes | None]] | None = None) -> RawRecord:
    return InterceptorRecord(URI, b"k", b"v", headers if headers is not None else [])


class Upper(TypedInterceptor):
    def on_send(self, record: TypedRecord) -> TypedRecord | None:
        record.value = record.value.upper()
        return record


class Suffix(TypedInterceptor):
    def on_send(self, record: TypedRecord) -> TypedRecord | None:
        record.value += "!"
        return record


class DropAll(TypedInterceptor):
    def on_consume(self, record: TypedRecord) -> TypedRecord | None:
        return None


class Boom(TypedInterceptor):
    def on_send(self, record: TypedRecord) -> TypedRecord | None:
        raise RuntimeError("boom")

    def on_acknowledgement(
        self, topic_uri: str, partition: int | None, offset: int | None, error: BaseException | None
    ) -> None:
        raise RuntimeError("boom")


class Recorder(TypedInterceptor):
    def __init__(self) -> None:
        self.consumed: list[TypedRecord] = []
        self.acks: list[tuple[str, int | None, int | None, BaseException | None]] = []
        self.closed = False

    def on_consume(self, record: TypedRecord) -> TypedRecord | None:
        self.consumed.append(record)
        return record

    def on_acknowledgement(
        self, topic_uri: str, partition: int | None, offset: int | None, error: BaseException | None
    ) -> None:
        self.acks.append((topic_uri, partition, offset, error))

    def close(self) -> None:
        self.closed = True


def test_empty_chain_is_flagged_and_passes_through() -> None:
    chain: InterceptorChain[TypedRecord] = InterceptorChain()
    assert chain.empty
    record = InterceptorRecord(URI, "k", "v")
    assert chain.on_send(record) is record
    assert not InterceptorChain([Upper()]).empty


def test_chain_applies_in_order() -> None:
    chain = InterceptorChain([Upper(), Suffix()])
    assert chain.on_send(InterceptorRecord(URI, "k", "abc")).value == "ABC!"  # type: ignore[union-attr]
    chain = InterceptorChain([Suffix(), Upper()])
    assert chain.on_send(InterceptorRecord(URI, "k", "abc")).value == "ABC!"  # type: ignore[union-attr]


def test_drop_stops_the_chain() -> None:
    recorder = Recorder()
    chain = InterceptorChain([DropAll(), recorder])
    assert chain.on_consume(InterceptorRecord(URI, "k", "v")) is None
    assert recorder.consumed == []


def test_failing_interceptor_is_skipped_without_losing_the_record() -> None:
    chain = InterceptorChain([Boom(), Suffix()])
    result = chain.on_send(InterceptorRecord(URI, "k", "v"))
    assert result is not None
    assert result.value == "v!"


def test_acknowledgement_and_close_reach_every_interceptor() -> None:
    recorder = Recorder()
    chain = InterceptorChain([Boom(), recorder])
    error = RuntimeError("not written")
    chain.on_acknowledgement(URI, 3, 17, None)
    chain.on_acknowledgement(URI, 3, None, error)
    assert recorder.acks == [(URI, 3, 17, None), (URI, 3, None, error)]
    chain.close()
    assert recorder.closed


def test_default_hooks_are_no_ops() -> None:
    record = raw()
    base = RawInterceptor()
    assert base.on_send(record) is record
    assert base.on_consume(record) is record


def test_produce_ts_encoding_is_big_endian_int64_ms() -> None:
    assert encode_produce_ts(1_700_000_000_123) == struct.pack(">q", 1_700_000_000_123)
    assert encode_produce_ts(1) == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    assert decode_produce_ts(encode_produce_ts(1_700_000_000_123)) == 1_700_000_000_123
    assert decode_produce_ts(b"123") is None
    assert decode_produce_ts(None) is None


def test_produce_timestamp_stamps_and_replaces() -> None:
    interceptor = ProduceTimestampInterceptor(clock=lambda: 1_700_000_000.5)
    caller_headers: list[tuple[str, bytes | None]] = [("a", b"1"), (PRODUCE_TS_HEADER, b"old-stamp")]
    stamped = interceptor.on_send(raw(caller_headers))
    assert stamped is not None
    assert stamped.headers == [("a", b"1"), (PRODUCE_TS_HEADER, struct.pack(">q", 1_700_000_000_500))]
    assert caller_headers == [("a", b"1"), (PRODUCE_TS_HEADER, b"old-stamp")]


def test_produce_timestamp_observes_end_to_end_latency() -> None:
    now = [1000.0]
    seen: list[tuple[str, float]] = []
    interceptor = ProduceTimestampInterceptor(lambda uri, s: seen.append((uri, s)), clock=lambda: now[0])
    record = interceptor.on_send(raw())
    assert record is not None
    now[0] = 1002.25
    assert interceptor.on_consume(record) is record
    assert seen == [(URI, 2.25)]


def test_produce_timestamp_ignores_missing_or_bad_headers_and_clamps_skew() -> None:
    seen: list[float] = []
    interceptor = ProduceTimestampInterceptor(lambda _uri, s: seen.append(s), clock=lambda: 10.0)
    interceptor.on_consume(raw())
    interceptor.on_consume(raw([(PRODUCE_TS_HEADER, b"bad")]))
    assert seen == []
    interceptor.on_consume(raw([(PRODUCE_TS_HEADER, encode_produce_ts(20_000))]))
    assert seen == [0.0]
