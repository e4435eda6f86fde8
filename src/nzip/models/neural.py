"""The default levels: context mixing with the shipped neural byte model as one input.

Per frame: the bytes are cut into lanes (:mod:`nzip.models.lanes_kernel`), and
for every step the integer GRU (:mod:`nzip.nn.engine`) reads the previous
byte of every lane at once and predicts the next one; the lane kernel then
codes those bytes, mixing the prediction with its adaptive contexts.  The
payload starts with one byte, the number of lanes; the rest is coded bits.

A model with a ``fallback`` (``nn3``, the default levels) also codes each
frame with that context-mixing model, on another thread at the same time,
and keeps whichever is smaller: a first byte of 0 (never a lane count)
means the rest is the fallback's payload.  Structured and binary data,
where the network knows less than the adaptive contexts, then cost no more
than level 3, and the choice is in the archive, not in a heuristic.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..logistic import SQUASH
from ..nn.engine import START_BYTE, GRUEngine
from ..nn.workers import StepWorkers
from . import cm_kernel, neural_loop, trace_kernel
from . import lanes_kernel as kernel
from .base import FrameTrace, Model, digest_of
from .cm import MAX_COST_BYTES, ContextMixingModel

#: Bump when a change to the lane kernel or to this driver changes coded bits.
KERNEL_VERSION = 1

MAX_LANES = 64
MIN_LANE = 2048  # bytes per lane before another lane is worth it
FALLBACK_MARK = 0  # first payload byte: a fallback payload follows
AHEAD = 4  # steps the network may run ahead of the coder when encoding on several threads
#: Where the fallback codes while the lanes run; one worker per core, so frames coded at once (-T) do not queue.
_fallback_pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="nzip-fallback")


def lane_count(size: int) -> int:
    """How many lanes the encoder uses for a frame of ``size`` bytes."""
    return max(1, min(MAX_LANES, size // MIN_LANE))


class NeuralMixModel(Model):
    """Context mixing (the configuration of a CM level) plus an integer GRU as a mixer input."""

    def __init__(
        self, name: str, cm: ContextMixingModel, network: str, summary: str, adapt_rate: int = 0, variant: int = 1,
        fallback: ContextMixingModel | None = None,
    ) -> None:  # fmt: skip
        if cm.config.lean or cm.config.flags & cm_kernel.FLAG_APM2 == 0:
            raise ValueError("the lane kernel implements the full context-mixing kernel (with APM2) only")
        self.name = name
        self.cm = cm
        self.network = network
        self.summary = summary
        self.variant = variant  # of the lane kernel (see lanes_kernel.Mixing)
        self.adapt_rate = adapt_rate  # the output layer's learning rate while coding, 2**-20 units; 0: fixed
        self.fallback = fallback
        self._engine: GRUEngine | None = None
        self._digest: bytes | None = None

    @property
    def engine(self) -> GRUEngine:
        """The network, loaded from the package on first use."""
        if self._engine is None:
            self._engine = GRUEngine.packaged(self.network)
        return self._engine

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = digest_of(
                b"nzip.nncm",
                KERNEL_VERSION.to_bytes(4, "little"),
                self.cm.config.params().tobytes(),
                SQUASH.tobytes(),
                self.engine.digest,
                *([b"adapt", self.adapt_rate.to_bytes(4, "little")] if self.adapt_rate else []),
                *([b"variant", self.variant.to_bytes(4, "little")] if self.variant != 1 else []),
                *([b"fallback", self.fallback.digest] if self.fallback else []),
            )
        return self._digest

    @property
    def description(self) -> str:
        return f"{self.name}: {self.summary}"

    def memory_usage(self, frame_size: int) -> int:
        lanes = lane_count(frame_size)
        hidden = self.engine.hidden
        per_lane = (
            8 * (kernel.LANE_FIELDS + kernel.REC_FIELDS)
            + 2 * kernel.LOCAL_INPUTS * kernel.LOCAL_SIZE
            + 8 * 256
            + 16 * hidden
        )
        extra = 0
        if self.variant != 1:
            extra += 4 * kernel.APM_O2_ROWS * 33 + 4 * kernel.AGREE_SETS * 64
        if self.adapt_rate:
            extra += 16 * hidden * 256 + 4 * lanes * 256
        if self.fallback:
            extra += self.fallback.memory_usage(frame_size)
        return self.cm.memory_usage(frame_size) + 4096 * 33 * 4 + lanes * per_lane + extra + 2 * frame_size

    def encode(self, data: bytes, threads: int = 1) -> bytes | None:
        if not data:
            return None
        if self.fallback is None:
            return self._encode_lanes(data, threads)
        if threads > 1:
            other = _fallback_pool.submit(self.fallback.encode, data)
            mine = self._encode_lanes(data, threads)
            theirs = other.result()
        else:
            mine, theirs = self._encode_lanes(data), self.fallback.encode(data)
        if theirs is not None and (mine is None or len(theirs) + 1 < len(mine)):
            return bytes([FALLBACK_MARK]) + theirs if len(theirs) + 1 < len(data) else None
        return mine

    def _encode_lanes(self, data: bytes, threads: int = 1) -> bytes | None:
        size = len(data)
        lanes = lane_count(size)
        src = np.frombuffer(data, dtype=np.uint8)
        out = np.empty(size, dtype=np.uint8)
        coder = self._run(False, lanes, src, out, size, threads)
        if coder is None:
            return None
        coded = int(kernel.finish(False, coder, out))
        if coded < 0 or coded + 1 >= size:
            return None
        return bytes([lanes]) + out[:coded].tobytes()

    def trace(self, data: bytes) -> FrameTrace | None:
        """The frame's costs under the lanes, or under the fallback when :meth:`encode` would pick it."""
        size = len(data)
        lanes = lane_count(size)
        src = np.frombuffer(data, dtype=np.uint8)
        out = np.empty(MAX_COST_BYTES * size + 8, dtype=np.uint8)
        costs = trace_kernel.new(size, network=True)
        coder = self._run(False, lanes, src, out, size, 1, costs)
        assert coder is not None  # the output has room for the costliest coding
        mine = FrameTrace(1 + int(kernel.finish(False, coder, out)), costs, self.name)
        if self.fallback is None:
            return mine
        theirs = self.fallback.trace(data)
        if theirs is not None and theirs.payload + 1 < mine.payload:
            return FrameTrace(theirs.payload + 1, theirs.costs, self.fallback.name)
        return mine

    def decode(self, payload: bytes, size: int, threads: int = 1) -> bytes:
        if self.fallback and payload[:1] == bytes([FALLBACK_MARK]):
            return self.fallback.decode(payload[1:], size)
        if not payload or not 1 <= payload[0] <= MAX_LANES:
            return bytes(size)  # damaged: the container's checksum reports it
        src = np.frombuffer(payload, dtype=np.uint8)[1:]
        dst = np.zeros(size, dtype=np.uint8)
        self._run(True, min(payload[0], size), src, dst, size, threads)
        return dst.tobytes()

    def _run(
        self,
        decoding: bool,
        lanes: int,
        src: np.ndarray,
        dst: np.ndarray,
        size: int,
        threads: int = 1,
        trace: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Code a frame step by step; return the coder state, or None when the encoder's output is full.

        With ``threads > 1`` the network's steps are shared by that many
        threads (:class:`StepWorkers`), and when encoding (every byte is
        known in advance, so the network does not wait for the coder) they
        run ahead of the lane kernel on a thread of their own.  The coded
        bits are the same for every ``threads``.
        """
        lane_len = -(-size // lanes)
        lanes = -(-size // lane_len)  # no empty lanes
        last_len = size - (lanes - 1) * lane_len
        params = self.cm.config.params()
        table, match_table = self.cm.tables(size)
        mixing = kernel.Mixing(params, self.variant)
        lane_state = np.zeros((lanes, kernel.LANE_FIELDS), dtype=np.int64)
        rec = np.zeros((lanes, kernel.REC_FIELDS), dtype=np.int64)
        local = np.zeros((lanes, kernel.LOCAL_INPUTS, kernel.LOCAL_SIZE), dtype=np.uint16)
        starts = np.arange(lanes, dtype=np.int64) * lane_len
        buf = dst if decoding else src
        costs = trace_kernel.empty() if trace is None else trace

        def code(t: int, freqs: np.ndarray) -> bool:
            return kernel.step(
                decoding, t, active(t), lane_len, size, src, dst, freqs, params, table, match_table,
                lane_state, rec, local, mixing.w_a, mixing.w_b, mixing.w_c, mixing.w_d, mixing.w_f, mixing.sm,
                mixing.msm, mixing.apm2, mixing.apm_nn, mixing.apm_o2, mixing.coder, self.variant, costs,
            )  # fmt: skip

        def active(t: int) -> int:
            return lanes if t < last_len else lanes - 1

        def read(t: int) -> np.ndarray:
            return buf[np.minimum(starts + t, size - 1)]  # step t's bytes: the next step reads them

        kernel.start(decoding, src, mixing.coder)
        state = self.engine.new_state(lanes, self.adapt_rate)
        e, a = self.engine, state.adapt
        if threads == 1 and e.layers == 1 and a is not None:  # the whole frame in compiled code
            ok = neural_loop.run(
                decoding, lane_len, last_len, lane_len, size, src, dst, starts,
                e.table0, e.w_hh[0], e.m_hh[0], e.b_hn[0], e.sigmoid, e.tanh, state.h[0], state.h8[0], e.m_out, e.exp,
                a.err, a.bias, a.rate, a.cols, e.b_out, a.bias_in_use, a.h8_t, a.gain, e.w_out, a.delta, a.w_eff,
                params, table, match_table, lane_state, rec, local, mixing.w_a, mixing.w_b, mixing.w_c, mixing.w_d,
                mixing.w_f, mixing.sm, mixing.msm, mixing.apm2, mixing.apm_nn, mixing.apm_o2, mixing.coder,
                self.variant, costs,
            )  # fmt: skip
            return mixing.coder if ok else None
        helpers = threads - 1 if threads > 1 and not decoding else threads
        with StepWorkers(self.engine, state, lanes, helpers) as network:
            if threads > 1 and not decoding:
                ok = _pipelined(network, lane_len, read, active, code, self.adapt_rate > 0)
            else:
                ok = _in_turn(network, lane_len, read, active, code, self.adapt_rate > 0)
        return mixing.coder if ok else None


Reader = Callable[[int], np.ndarray]
Counter = Callable[[int], int]
Coder = Callable[[int, np.ndarray], bool]


def _in_turn(network: StepWorkers, steps: int, read: Reader, active: Counter, code: Coder, learns: bool) -> bool:
    """Network, then coder, then learning, step after step (decoding must: each step reads what was decoded)."""
    lanes = network.state.h[0].shape[0]
    freqs = np.empty((lanes, 256), dtype=np.int64)
    inputs = np.full(lanes, START_BYTE, dtype=np.uint8)
    for t in range(steps):
        network.step(inputs, freqs)
        if not code(t, freqs):
            return False
        inputs = read(t)
        if learns:
            network.learn(inputs, freqs, active(t))
    return True


def _pipelined(network: StepWorkers, steps: int, read: Reader, active: Counter, code: Coder, learns: bool) -> bool:
    """Encoding: the network runs up to :data:`AHEAD` steps ahead of the coder, on a thread of its own."""
    lanes = network.state.h[0].shape[0]
    ring = [np.empty((lanes, 256), dtype=np.int64) for _ in range(AHEAD)]
    ready, free = threading.Semaphore(0), threading.Semaphore(AHEAD)
    stop = threading.Event()
    failure: list[BaseException] = []

    def predict() -> None:
        try:
            inputs = np.full(lanes, START_BYTE, dtype=np.uint8)
            for t in range(steps):
                free.acquire()
                if stop.is_set():
                    return
                freqs = ring[t % AHEAD]
                network.step(inputs, freqs)
                inputs = read(t)
                if learns:
                    network.learn(inputs, freqs, active(t))  # before the coder sees freqs: learning reads them
                ready.release()
        except BaseException as e:  # re-raised on the coding thread
            failure.append(e)
            ready.release()

    producer = threading.Thread(target=predict, name="nzip-network", daemon=True)
    producer.start()
    ok = True
    try:
        for t in range(steps):
            ready.acquire()
            if failure:
                break
            if not code(t, ring[t % AHEAD]):
                ok = False
                break
            free.release()
    finally:
        stop.set()
        free.release()
        producer.join()
    if failure:
        raise failure[0]
    return ok
