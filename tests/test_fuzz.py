"""Mutated archives: the original data or a typed NzipError, never anything else.

Mutations: bit flips, truncations, splices of two archives, and forged
lengths and counts written into headers, frame headers and footers with their
checksums recomputed (so the forgeries reach the validation behind the
checksums).  Inputs found by the coverage-guided fuzzer (``fuzz/``) are kept
in ``tests/fuzz_corpus`` and replayed here.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nzip
from conftest import sample_text
from nzip._mutate import refresh_checksums
from nzip.info import scan
from nzip.recover import salvage

DATA_A = sample_text(2500, seed=21) + bytes(range(200))
DATA_B = sample_text(1800, seed=22)
ARCHIVES = {
    "a1": (DATA_A, nzip.compress(DATA_A, level=1, frame_size=1024)),
    "a3": (DATA_A, nzip.compress(DATA_A, level=3, frame_size=1024)),
    "b2": (DATA_B, nzip.compress(DATA_B, level=2, frame_size=1024)),
}
CORPUS = Path(__file__).parent / "fuzz_corpus"


def check(data: bytes, original: bytes | None) -> None:
    """Decoding gives ``original`` (if known) or raises NzipError; salvage and --list never raise else."""
    try:
        out = nzip.decompress(data)
    except nzip.NzipError:
        pass
    else:
        if original is not None:
            assert out == original
    try:
        salvage(data, lambda chunk: None)
    except nzip.NzipError:
        pass
    try:
        scan(io.BytesIO(data))
    except nzip.NzipError:
        pass


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    name = draw(st.sampled_from(sorted(ARCHIVES)))
    original, packed = ARCHIVES[name]
    buf = bytearray(packed)
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "forge"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            buf[draw(st.integers(0, len(buf) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(buf), original
    if kind == "truncate":
        return bytes(buf[: draw(st.integers(0, len(buf) - 1))]), None
    if kind == "splice":
        other = ARCHIVES[draw(st.sampled_from(sorted(ARCHIVES)))][1]
        cut_a = draw(st.integers(0, len(buf)))
        cut_b = draw(st.integers(0, len(other)))
        return bytes(buf[:cut_a]) + other[cut_b:], None
    # Forge a 1-, 4- or 8-byte field with an extreme or random value, then fix the checksums.
    pos = draw(st.integers(0, len(buf) - 1))
    width = draw(st.sampled_from([1, 4, 8]))
    value = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1))
    raw = struct.pack("<Q", value)[:width]
    buf[pos : pos + width] = raw[: len(buf) - pos]
    return refresh_checksums(bytes(buf)), None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_archives(case: tuple[bytes, bytes | None]) -> None:
    data, original = case
    check(data, original)


def test_refresh_checksums_keeps_valid_archives_valid() -> None:
    for original, packed in ARCHIVES.values():
        assert refresh_checksums(packed) == packed
        assert nzip.decompress(refresh_checksums(packed)) == original


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*")), ids=lambda p: p.name)
def test_fuzz_corpus(path: Path) -> None:
    data = path.read_bytes()
    check(data, None)
    check(refresh_checksums(data), None)


def test_fuzz_target_short_run(tmp_path: Path) -> None:
    """A short, bounded coverage-guided run of fuzz/fuzz_decompress.py from the kept corpus."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    target = Path(__file__).parents[1] / "fuzz" / "fuzz_decompress.py"
    r = subprocess.run(
        [sys.executable, str(target), str(corpus), "-runs=3000", "-max_total_time=120", "-timeout=30"],
        capture_output=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert b"Done " in r.stderr  # libFuzzer's summary: no crash, leak or timeout stopped it
