"""Round trips through the one-shot and streaming APIs at every level."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nzip
from nzip import container as fmt

LEVELS = [1, 2, 3]


def inputs() -> dict[str, bytes]:
    rng = random.Random(42)
    return {
        "empty": b"",
        "one byte": b"x",
        "every byte value": bytes(range(256)) * 3,
        "random": bytes(rng.getrandbits(8) for _ in range(5000)),
        "long run": b"\0" * 50000,
        "two runs": b"a" * 3000 + b"b" * 3000,
        "records": b"".join(i.to_bytes(4, "little") + b"\x01\x02" * 30 for i in range(300)),
    }


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", list(inputs()))
def test_round_trip(name: str, level: int) -> None:
    data = inputs()[name]
    assert nzip.decompress(nzip.compress(data, level=level)) == data


@pytest.mark.parametrize("level", LEVELS)
def test_text_and_utf8(text: bytes, utf8: bytes, level: int) -> None:
    for data in (text, utf8):
        packed = nzip.compress(data, level=level)
        assert nzip.decompress(packed) == data
        assert len(packed) < len(data) // 2


def test_text_compresses_well(text: bytes) -> None:
    # Repetitive pseudo-English: the model must find the structure.
    assert len(nzip.compress(text, level=3)) * 8 / len(text) < 2.0


def test_random_data_is_stored_with_bounded_overhead() -> None:
    data = os.urandom(20000)
    packed = nzip.compress(data, level=1)
    members = _kinds(packed)
    assert members == [fmt.FRAME_STORED]
    assert len(packed) - len(data) <= 200


def _kinds(packed: bytes) -> list[int]:
    import io

    from nzip.info import scan

    return [k for m in scan(io.BytesIO(packed)) for k, _, _ in m.frames]


@pytest.mark.parametrize("threads", [1, 3])
def test_many_frames(text: bytes, threads: int) -> None:
    data = text * 3 + os.urandom(3000) + text
    packed = nzip.compress(data, level=1, frame_size=1024, threads=threads)
    kinds = _kinds(packed)
    assert len(kinds) == -(-len(data) // 1024)
    assert fmt.FRAME_STORED in kinds and fmt.FRAME_MODELLED in kinds
    assert nzip.decompress(packed, threads=threads) == data


def test_output_independent_of_threads(text: bytes) -> None:
    data = text * 2
    one = nzip.compress(data, level=2, frame_size=4096, threads=1)
    assert nzip.compress(data, level=2, frame_size=4096, threads=4) == one


def test_streaming_odd_pieces(text: bytes) -> None:
    data = text + bytes(range(256)) * 10
    rng = random.Random(7)
    comp = nzip.Compressor(level=1, frame_size=2048)
    packed = bytearray()
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 2, 3, 7, 100, 1000, 4999])
        packed += comp.compress(data[pos : pos + n])
        pos += n
    packed += comp.flush()
    assert bytes(packed) == nzip.compress(data, level=1, frame_size=2048)
    dec = nzip.Decompressor()
    out = bytearray()
    pos = 0
    while pos < len(packed):
        n = rng.choice([1, 5, 17, 300, 2000])
        out += dec.decompress(packed[pos : pos + n])
        pos += n
    dec.finish()
    assert dec.eof
    assert bytes(out) == data


def test_concatenated_members(text: bytes) -> None:
    a, b = text[:5000], text[5000:]
    packed = nzip.compress(a, level=1) + nzip.compress(b"", level=2) + nzip.compress(b, level=3)
    assert nzip.decompress(packed) == a + b


def test_levels_above_three_are_valid(text: bytes) -> None:
    for level in (4, 9):
        assert nzip.decompress(nzip.compress(text[:3000], level=level)) == text[:3000]
    with pytest.raises(ValueError):
        nzip.compress(b"x", level=10)
    with pytest.raises(ValueError):
        nzip.compress(b"x", level=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), level=st.sampled_from(LEVELS), frame_log=st.sampled_from([10, 11, 23]))
def test_property_round_trip(data: bytes, level: int, frame_log: int) -> None:
    packed = nzip.compress(data, level=level, frame_size=1 << frame_log)
    assert nzip.decompress(packed) == data
    # Never larger than the input plus a small header and a few bytes per frame.
    frames = max(1, -(-len(data) // (1 << frame_log)))
    assert len(packed) <= len(data) + 64 + 25 * frames


@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=500))
def test_property_unicode_text(text: str) -> None:
    data = text.encode("utf-8")
    assert nzip.decompress(nzip.compress(data, level=2)) == data
