"""Adaptive context mixing: the fast levels (1 to 3).

The model has no trained parameters.  It learns each frame's statistics as
it codes, mixing hashed order-0..8 contexts, word contexts, sparse contexts
and a match model (see :mod:`nzip.models.cm_kernel`).  What differs between
levels is which contexts are used, which optional stages are on, and how much
memory the hash tables may take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..logistic import SQUASH
from . import cm_kernel as kernel
from . import trace_kernel
from .base import FrameTrace, Model, digest_of

#: Bump when a change to the kernel changes the coded bits of any model below.
KERNEL_VERSION = 1
#: A bit costs at most 16 bits (no probability is below 1/65536): 16 bytes per byte.
MAX_COST_BYTES = 16

_MIN_TABLE_BITS = 10
_MIN_MATCH_BITS = 10


@dataclass(frozen=True)
class CMConfig:
    """Everything that defines one context-mixing model."""

    contexts: tuple[int, ...]
    table_bits: int  # log2 of the most 64-byte buckets the hash table may have
    match_min: int  # bytes that must repeat before the match model predicts
    match_bits: int  # log2 of the most entries in the match table
    limit: int  # counters adapt no slower than 1/(limit + 1.5)
    mixer_rate: int  # mixer learning rate, in 1/2^20 per unit of error
    flags: int  # optional stages, see cm_kernel.FLAG_*
    lean: bool = False  # use the lean kernel (16-bit counters, one mixer)

    def params(self) -> np.ndarray:
        p = np.zeros(kernel.P_CTX + len(self.contexts), dtype=np.int64)
        p[kernel.P_TABLE_BITS] = self.table_bits
        p[kernel.P_MATCH_MIN] = self.match_min
        p[kernel.P_MATCH_BITS] = self.match_bits
        p[kernel.P_LIMIT] = self.limit
        p[kernel.P_MIX_SHIFT] = self.mixer_rate
        p[kernel.P_FLAGS] = self.flags
        p[kernel.P_NCTX] = len(self.contexts)
        p[kernel.P_CTX :] = self.contexts
        return p

    @property
    def bucket_bytes(self) -> int:
        return 32 if self.lean else 64


class ContextMixingModel(Model):
    """A :class:`Model` backed by the compiled context-mixing kernel."""

    def __init__(self, name: str, config: CMConfig, summary: str) -> None:
        if not 1 <= len(config.contexts) <= kernel.MAX_CTX:
            raise ValueError("a context-mixing model needs 1 to 24 contexts")
        self.name = name
        self.config = config
        self.summary = summary
        self._params = config.params()
        self._run = kernel.run_fast if config.lean else kernel.run
        self._digest = digest_of(
            b"nzip.cm.lean" if config.lean else b"nzip.cm",
            KERNEL_VERSION.to_bytes(4, "little"),
            self._params.tobytes(),
            SQUASH.tobytes(),
        )

    @property
    def digest(self) -> bytes:
        return self._digest

    @property
    def description(self) -> str:
        return f"{self.name}: {self.summary}"

    def _sizes(self, size: int) -> tuple[int, int]:
        """Hash-table and match-table bits for a frame of ``size`` bytes.

        Small frames get small tables: they would not fill big ones, and
        clearing memory is not free.  Decoders derive the same sizes from the
        frame's raw length.
        """
        need = max(size, 1).bit_length()
        table_bits = min(self.config.table_bits, max(_MIN_TABLE_BITS, need + 1))
        match_bits = min(self.config.match_bits, max(_MIN_MATCH_BITS, need))
        return table_bits, match_bits

    def memory_usage(self, frame_size: int) -> int:
        table_bits, match_bits = self._sizes(frame_size)
        if self.config.lean:
            fixed = 65536 * 2 + 16 * 1024  # order-1 counters, mixer, match map
        else:
            fixed = 65536 * 33 * 4 + 256 * 1024  # order-1 SSE map, mixers, small maps
        return (self.config.bucket_bytes << table_bits) + (4 << match_bits) + fixed

    def tables(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        table_bits, match_bits = self._sizes(size)
        dtype = np.uint16 if self.config.lean else np.uint32
        return np.zeros(16 << table_bits, dtype=dtype), np.zeros(1 << match_bits, dtype=np.int32)

    def encode(self, data: bytes, threads: int = 1) -> bytes | None:
        size = len(data)
        if size == 0:
            return None
        src = np.frombuffer(data, dtype=np.uint8).copy()
        dst = np.empty(size, dtype=np.uint8)
        table, match_table = self.tables(size)
        coded = self._run(False, src, dst, size, self._params, table, match_table, trace_kernel.empty())
        if coded < 0 or coded >= size:
            return None
        return dst[:coded].tobytes()

    def decode(self, payload: bytes, size: int, threads: int = 1) -> bytes:
        src = np.frombuffer(payload, dtype=np.uint8).copy()
        dst = np.empty(size, dtype=np.uint8)
        table, match_table = self.tables(size)
        self._run(True, src, dst, size, self._params, table, match_table, trace_kernel.empty())
        return dst.tobytes()

    def trace(self, data: bytes) -> FrameTrace | None:
        size = len(data)
        src = np.frombuffer(data, dtype=np.uint8).copy()
        dst = np.empty(MAX_COST_BYTES * size + 8, dtype=np.uint8)  # room for the costliest coding
        table, match_table = self.tables(size)
        costs = trace_kernel.new(size, network=False)
        coded = self._run(False, src, dst, size, self._params, table, match_table, costs)
        return FrameTrace(int(coded), costs, self.name)


_WORDS = (kernel.CTX_WORD, kernel.CTX_WORD_PREV)
_RECORDS = (kernel.CTX_RECORD, kernel.CTX_RECORD_LEFT)
_ALL = kernel.FLAG_INDIRECT | kernel.FLAG_MIXER2 | kernel.FLAG_APM2

# Chosen by measurement on the benchmark files (see docs/DESIGN.md): more
# contexts are not always better, since every input the mixer must learn to
# ignore costs something on small files.
LEVEL_MODELS: dict[int, ContextMixingModel] = {
    1: ContextMixingModel(
        "cm1",
        CMConfig((2, 3), table_bits=18, match_min=6, match_bits=18, limit=15, mixer_rate=14, flags=0, lean=True),
        "orders 1-3 with compact counters, match model, one mixer",
    ),
    2: ContextMixingModel(
        "cm2",
        CMConfig(
            (1, 2, 3, 4, 6, kernel.CTX_WORD),
            table_bits=21,
            match_min=6,
            match_bits=21,
            limit=255,
            mixer_rate=16,
            flags=_ALL,
        ),
        "orders 1-4 and 6, word context, match model, bit histories, two mixers, two SSE stages",
    ),
    3: ContextMixingModel(
        "cm3",
        CMConfig(
            (0, 1, 2, 3, 4, 6, *_WORDS, *_RECORDS),
            table_bits=22,
            match_min=6,
            match_bits=22,
            limit=255,
            mixer_rate=16,
            flags=_ALL,
        ),
        "orders 0-4 and 6, word and record contexts, match model, bit histories, two mixers, two SSE stages",
    ),
}
