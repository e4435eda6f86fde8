"""Threads inside a frame: the neural levels' steps shared by several threads, the archive unchanged."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

import nzip
from conftest import sample_text
from nzip import codec
from nzip.models import NEURAL
from nzip.nn import intmm
from nzip.nn.workers import StepWorkers, split


@pytest.fixture(scope="module")
def frame() -> bytes:
    # 64 lanes of uneven length (the last lane is shorter), text with a binary stretch in it
    return sample_text(150_001, seed=3)[:90_000] + bytes(range(256)) * 40 + sample_text(50_000, seed=4)


@pytest.fixture(scope="module")
def archive(frame: bytes) -> bytes:
    return nzip.compress(frame, 6, threads=1)


def test_split_covers_every_lane_once() -> None:
    for count in (1, 2, 7, 64):
        for parts in (1, 2, 3, 5, 100):
            slices = split(count, parts)
            assert len(slices) == min(count, parts)
            assert [i for s in slices for i in range(count)[s]] == list(range(count))


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_archive_does_not_depend_on_threads(frame: bytes, archive: bytes, threads: int) -> None:
    assert nzip.compress(frame, 6, threads=threads) == archive


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_decoding_on_threads(frame: bytes, archive: bytes, threads: int) -> None:
    assert nzip.decompress(archive, threads=threads) == frame


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_model_frames_on_threads_match(frame: bytes, threads: int) -> None:
    data = frame[:40_000]
    payload = NEURAL.encode(data, 1)
    assert NEURAL.encode(data, threads) == payload
    assert NEURAL.decode(payload, len(data), threads) == data


def test_incompressible_frame_stops_the_pipeline() -> None:
    data = np.random.default_rng(1).integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    before = threading.active_count()
    assert NEURAL._encode_lanes(data, 2) is None  # the coder's output fills up; the network thread must end
    assert threading.active_count() == before


def test_a_failing_helper_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = NEURAL.engine
    real = type(engine).step

    def step(self, state, inputs, freqs, lanes=slice(None)):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("injected")
        real(self, state, inputs, freqs, lanes)

    monkeypatch.setattr(type(engine), "step", step)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="injected"):
        NEURAL._encode_lanes(sample_text(20_000), 3)  # the network thread and its helper
    with pytest.raises(RuntimeError, match="injected"):
        NEURAL._encode_lanes(sample_text(20_000), 2)  # the network thread alone
    with pytest.raises(RuntimeError, match="injected"):
        NEURAL.decode(NEURAL.encode(sample_text(20_000)), 20_000, 2)  # decoding: a helper
    assert threading.active_count() == before


def test_workers_close_twice() -> None:
    state = NEURAL.engine.new_state(8)
    workers = StepWorkers(NEURAL.engine, state, 8, 3)
    workers.close()
    workers.close()


def test_products_are_exact_at_every_shape() -> None:
    rng = np.random.default_rng(7)
    shapes = ((1, 1, 16), (2, 7, 16), (3, 5, 16), (4, 2, 32), (6, 4, 32), (7, 9, 48), (64, 960, 320), (13, 256, 64))
    for rows, cols, inner in shapes:
        a = rng.integers(-255, 256, (rows, inner)).astype(np.int16)
        w = rng.integers(-255, 256, (cols, inner)).astype(np.int16)
        out = np.empty((rows, cols), dtype=np.int32)
        intmm.matmul(a, w, out)
        assert (out == a.astype(np.int64) @ w.T.astype(np.int64)).all()
        part = np.empty((rows - rows // 2, cols), dtype=np.int32)
        intmm.matmul(a[rows // 2 :], w, part)  # a range of rows, as a thread steps its lanes
        assert (part == out[rows // 2 :]).all()


def test_products_check_shapes() -> None:
    a = np.zeros((4, 20), dtype=np.int16)
    with pytest.raises(ValueError):
        intmm.matmul(a, np.zeros((2, 20), dtype=np.int16), np.empty((4, 2), dtype=np.int32))


def test_frames_at_once_fits_memory() -> None:
    assert codec.frames_at_once(4, 1) == 4
    assert codec.frames_at_once(4, 1 << 62) == 1  # no machine has room for two such frames
    if hasattr(os, "sysconf"):
        quarter = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
        assert codec.frames_at_once(64, quarter // 3) == 3


def test_streamed_decoding_waits_for_a_frame_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """iter_decompress on two threads decodes frames two at a time, whatever the input chunks."""
    data = sample_text(9 * 1024, seed=4)
    packed = nzip.compress(data, level=1, frame_size=1024)
    batches: list[int] = []
    real = codec.map_frames

    def counting(executor: object, func: object, items: list) -> list:
        batches.append(len(items))
        return real(executor, func, items)

    monkeypatch.setattr(codec, "map_frames", counting)
    chunks = [packed[i : i + 100] for i in range(0, len(packed), 100)]
    assert b"".join(codec.iter_decompress(chunks, threads=2, piece=512)) == data
    assert batches == [2, 2, 2, 2, 1]  # nine frames
    batches.clear()
    assert b"".join(codec.iter_decompress(chunks, threads=1)) == data
    assert batches == [1] * 9
    batches.clear()
    with nzip.open(io.BytesIO(packed), threads=2) as f:
        assert f.read() == data
    assert batches == [2, 2, 2, 2, 1]
