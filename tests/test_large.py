"""Large inputs: streams run in bounded memory, and sizes past 4 GiB work."""

from __future__ import annotations

from collections.abc import Iterator

import nzip
from nzip import container as fmt
from nzip.bench import measure_stream_memory


def test_stream_memory_does_not_grow_with_input() -> None:
    # Long matches keep a window of the stream on both sides: 2 MiB here, so
    # that both streams are past it (the default 256 MiB bounds memory alike).
    options = ("--frame-size", "1M", "--long", "21")
    small = measure_stream_memory(1, 2 << 20, options)
    big = measure_stream_memory(1, 24 << 20, options)
    assert small.identical and big.identical
    # Twelve times the input (very compressible), about the same peak memory.
    assert big.compress_kib < small.compress_kib + 32 * 1024, (small, big)
    assert big.decompress_kib < small.decompress_kib + 32 * 1024, (small, big)


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
