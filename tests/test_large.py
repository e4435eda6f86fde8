"""Large inputs: streams run in bounded memory, and sizes past 4 GiB work."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator

import nzip
from nzip import container as fmt

# Runs the command line and reports the process's peak RSS (KiB) on the last line of stderr.
_RUN_NZIP = (
    "import resource, sys\n"
    "from nzip.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def _chunks(total: int, seed: int = 1) -> Iterator[bytes]:
    """Deterministic, compressible but not trivial data, 256 KiB at a time."""
    block = hashlib.sha256(str(seed).encode()).hexdigest().encode() * 64  # 4 KiB
    made = 0
    i = 0
    while made < total:
        chunk = (block[i % 64 :] + block[: i % 64]) * 64
        chunk = chunk[: min(len(chunk), total - made)]
        made += len(chunk)
        i += 1
        yield chunk


def _pipe_round_trip(size: int) -> tuple[int, int, str, str]:
    """``data | nzip -1 | nzip -d``; return both peak RSS values and the hashes in and out."""
    comp = subprocess.Popen(
        [sys.executable, "-c", _RUN_NZIP, "-1", "--frame-size", "1M"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    decomp = subprocess.Popen(
        [sys.executable, "-c", _RUN_NZIP, "-d"], stdin=comp.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert comp.stdout is not None and comp.stdin is not None and decomp.stdout is not None
    comp.stdout.close()
    digest_in = hashlib.sha256()

    def feed() -> None:
        for chunk in _chunks(size):
            digest_in.update(chunk)
            comp.stdin.write(chunk)
        comp.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    digest_out = hashlib.sha256()
    while block := decomp.stdout.read(1 << 20):
        digest_out.update(block)
    feeder.join()
    err_c = comp.stderr.read() if comp.stderr else b""
    err_d = decomp.stderr.read() if decomp.stderr else b""
    assert comp.wait() == 0 and decomp.wait() == 0, (err_c, err_d)
    return int(err_c.split()[-1]), int(err_d.split()[-1]), digest_in.hexdigest(), digest_out.hexdigest()


def test_stream_memory_does_not_grow_with_input() -> None:
    small_c, small_d, h_in, h_out = _pipe_round_trip(2 << 20)
    assert h_in == h_out
    big_c, big_d, h_in, h_out = _pipe_round_trip(24 << 20)
    assert h_in == h_out
    # Twelve times the input, about the same peak memory (allowing for noise).
    assert big_c < small_c + 32 * 1024, (small_c, big_c)
    assert big_d < small_d + 32 * 1024, (small_d, big_d)


def test_member_larger_than_4_gib() -> None:
    """A member of 4.25 GiB (stored frames of zeros) decodes, and its 64-bit total checks out."""
    frame_log = 24
    frame = bytes(1 << frame_log)
    count = 272  # 272 * 16 MiB = 4.25 GiB
    head = fmt.FrameHeader(fmt.FRAME_STORED, len(frame), len(frame), fmt.crc32(frame)).pack()
    header = fmt.StreamHeader("cm1", nzip.models.model_for_level(1).digest, 1, frame_log).pack()
    footer = fmt.Footer(count << frame_log, ((len(frame), len(frame)),) * count).pack()

    def archive() -> Iterator[bytes]:
        yield header
        for _ in range(count):
            yield head
            yield frame
        yield footer

    total = 0
    for out in nzip.codec.iter_decompress(archive()):
        total += len(out)
    assert total == count << frame_log > 2**32
