"""Coverage-guided fuzz target for the decoder (atheris / libFuzzer).

Every input must decode, salvage and list (``--list``) or raise
:class:`nzip.NzipError`; anything else (an
other exception, a hang, a crash) is a bug.  Each input is tried as it is and
with its checksums recomputed, so mutations of lengths and counts get past
the CRCs.  Run it with::

    pip install atheris
    python fuzz/fuzz_decompress.py fuzz/corpus -max_total_time=600 -rss_limit_mb=4096

The seed corpus is created on first run from small archives of every level.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import atheris
import numba  # noqa: F401 - imported first so that it is not instrumented
import numpy

# The numba kernels compile Python bytecode and must not be instrumented; the
# container, codec and recovery code around them is what the fuzzer explores.
_COMPILED = [
    "nzip.coder",
    "nzip.logistic",
    "nzip.models.cm_kernel",
    "nzip.models.lanes_kernel",
    "nzip.models.neural_loop",
    "nzip.models.trace_kernel",
    "nzip.nn.engine",
    "nzip.nn.intmm",
]
with atheris.instrument_imports(include=["nzip"], exclude=_COMPILED):
    import nzip
    from nzip._mutate import refresh_checksums
    from nzip.info import scan
    from nzip.recover import salvage


def seed_corpus(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    text = b"The quick brown fox jumps over the lazy dog. " * 40 + bytes(range(256))
    for level in (1, 2, 3):
        (directory / f"seed-level{level}").write_bytes(nzip.compress(text, level=level, frame_size=1024))
    ids = numpy.repeat(numpy.arange(600, dtype=numpy.uint32), 2)
    noise = numpy.random.default_rng(11).integers(0, 4, ids.size, dtype=numpy.uint32)
    records = numpy.stack([ids, ids * 7 + 3, noise], axis=1).astype("<u4").tobytes()
    (directory / "seed-level6-fallback").write_bytes(nzip.compress(records, level=6))  # a level-3 frame in nn3
    (directory / "seed-empty").write_bytes(nzip.compress(b"", compact=False))
    (directory / "seed-two-members").write_bytes(
        nzip.compress(b"one ", compact=False) + nzip.compress(b"two", level=1, compact=False)
    )
    for level in (1, 3, 6):  # compact members: one frame, a few bytes of header
        (directory / f"seed-compact-level{level}").write_bytes(nzip.compress(text[:300], level=level))
    repeat = text[:1200] + bytes(range(256)) * 2 + text[:1200]  # copied across 1 KiB frames: long frames
    for level in (1, 3):
        (directory / f"seed-long-level{level}").write_bytes(
            nzip.compress(repeat, level=level, frame_size=1024, long_window_log=20)
        )
    (directory / "seed-compact-mixed").write_bytes(
        nzip.compress(b"") + nzip.compress(bytes(range(40))) + nzip.compress(text, level=1, frame_size=1024)
    )


def test_one_input(data: bytes) -> None:
    for candidate in (data, refresh_checksums(data)):
        try:
            nzip.decompress(candidate)
        except nzip.NzipError:
            pass
        try:
            salvage(candidate, lambda chunk: None)
        except nzip.NzipError:
            pass
        try:
            scan(io.BytesIO(candidate))  # what --list reads
        except nzip.NzipError:
            pass


def main() -> None:
    corpus = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    if not any(a.startswith("-merge") for a in sys.argv):
        for directory in corpus:
            seed_corpus(directory)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
