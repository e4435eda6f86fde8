"""A stored language model behind nzip's :class:`~nzip.models.base.Model` interface.

Per frame, the payload is one mode byte and then either

* ``MODE_TOKENS``: varints ``lanes``, ``window``, ``overlap``, the token count
  of every lane, then the arithmetic-coded tokens; or
* ``MODE_FALLBACK``: a level-3 context-mixing payload, used when it is smaller
  (binary data, or text the model knows nothing about).

The frame's tokens are cut into ``lanes`` contiguous runs coded side by side,
one row per lane in every batch, which is what lets a decoder, which must go
one token at a time, still multiply matrices by many rows at once.  Each lane
starts from the model's BOS token.  A lane's context is a sliding window
over its KV cache: when ``window`` positions are used, the cache restarts
from the last ``overlap`` tokens, re-evaluated at positions ``0..overlap-1``.
Window and overlap are recorded per frame, so a decoder follows the encoder
whatever its defaults.  The encoder evaluates many positions per call; the
decoder steps; the engine's exact integer arithmetic makes both see the
same frequencies (tested).
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import NzipError
from ..models.base import Model, digest_of
from ..models.cm import LEVEL_MODELS as CM_MODELS
from . import coding, modelfile
from .engine import ARITHMETICS, Engine, cache_bytes_per_lane
from .quantize import token_codec, validate

#: The engine arithmetic new archives use; a change to the engine or this driver that changes coded
#: bits is a new arithmetic, and the old ones stay, so that every archive ever made still decodes.
ARITHMETIC = 2
MODE_TOKENS = 1
MODE_FALLBACK = 2
DEFAULT_WINDOW = 512
DEFAULT_OVERLAP = 128
MAX_LANES = 64
MIN_LANE_TOKENS = 256  # tokens per lane before another lane is worth it
CACHE_BUDGET = 2 << 30  # bytes of KV cache one frame may use
SCRATCH_BUDGET = 384 << 20  # bytes of logits and attention scores per encoder call
FALLBACK = CM_MODELS[3]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift < 63:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


class EngineError(NzipError):
    """The requested engine cannot run here (PyTorch missing, no GPU)."""


def archive_digest(file_digest: str, arithmetic: int = ARITHMETIC) -> bytes:
    """The digest archives record for a model file (content digest ``file_digest``, hex) run in ``arithmetic``."""
    return digest_of(b"nzip.llm", arithmetic.to_bytes(4, "little"), bytes.fromhex(file_digest))


def arithmetic_of(file_digest: str, digest: bytes) -> int | None:
    """Which arithmetic an archive's model ``digest`` asks of this model file; None: not this file."""
    return next((a for a in ARITHMETICS if archive_digest(file_digest, a) == digest), None)


class LanguageModel(Model):
    """A model file from the store, run by the integer engine."""

    def __init__(self, name: str, path: str, *, engine: str = "numpy", window: int = DEFAULT_WINDOW,
                 overlap: int = DEFAULT_OVERLAP, verify: bool = True, fallback: bool = True,
                 arithmetic: int = ARITHMETIC) -> None:  # fmt: skip
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"unknown engine arithmetic {arithmetic}")
        self.name = name
        self.arithmetic = arithmetic
        self.path = str(path)
        self.meta, self._arrays, self.file_digest = modelfile.read(path, verify=verify)
        problem = validate(self.meta, self._arrays)
        if problem:
            raise modelfile.ModelFileError(f"model file is not usable: {problem}")
        self.window = min(window, self.meta["max_window"])
        self.overlap = min(overlap, self.window // 2)
        self.engine_name = engine
        self.fallback = fallback  # False: always code tokens (tests, measurements)
        self.codec = token_codec(self.meta, self._arrays)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def digest(self) -> bytes:
        return archive_digest(self.file_digest, self.arithmetic)

    @property
    def description(self) -> str:
        m = self.meta
        return f"{self.name}: {m['arch']} language model, {m['layers']} layers x {m['hidden']}, {m['vocab']} tokens"

    @property
    def engine(self) -> Engine:
        """The engine, built on first use (weights converted for the products)."""
        with self._lock:
            if self._engine is None:
                backend = None
                if self.engine_name != "numpy":
                    try:
                        from .engine_torch import TorchBackend

                        backend = TorchBackend(self.engine_name)
                    except ImportError:
                        raise EngineError(
                            f"engine '{self.engine_name}' needs PyTorch: pip install 'nzip[llm]'"
                        ) from None
                    except RuntimeError as e:
                        raise EngineError(f"engine '{self.engine_name}': {e}") from None
                self._engine = Engine(self.meta, self._arrays, backend, self.arithmetic)
            return self._engine

    def lane_count(self, tokens: int) -> int:
        """How many lanes the encoder uses for a frame of ``tokens`` tokens."""
        per_lane = cache_bytes_per_lane(self.meta, self.window, self.arithmetic)
        return max(1, min(MAX_LANES, tokens // MIN_LANE_TOKENS, CACHE_BUDGET // per_lane))

    def memory_usage(self, frame_size: int) -> int:
        per_lane = cache_bytes_per_lane(self.meta, self.window, self.arithmetic)
        return FALLBACK.memory_usage(frame_size) + min(CACHE_BUDGET, MAX_LANES * per_lane) + 2 * SCRATCH_BUDGET

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, data: bytes, threads: int = 1) -> bytes | None:
        if not data:
            return None
        best = None
        ids = self.codec.encode(data)
        if ids is not None:
            best = self._encode_tokens(ids, len(data))
        fallback = FALLBACK.encode(data) if self.fallback or best is None else None
        if fallback is not None and (best is None or len(fallback) + 1 < len(best)):
            best = bytes([MODE_FALLBACK]) + fallback
        return best if best is not None and len(best) < len(data) else None

    def _split(self, ids: list[int]) -> list[np.ndarray]:
        lanes = self.lane_count(len(ids))
        lane_len = -(-len(ids) // lanes)
        arr = np.asarray(ids, dtype=np.int64)
        return [arr[i : i + lane_len] for i in range(0, len(ids), lane_len)]

    @staticmethod
    def _segments(longest: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
        """``(context, first, end)`` per window: inputs ``[context, end)`` predict targets ``[first, end)``."""
        out, first = [], 0
        while first < longest:
            ctx = first - overlap if first else 0
            end = min(longest, ctx + window)
            out.append((ctx, first, end))
            first = end
        return out

    def _encode_tokens(self, ids: list[int], size: int) -> bytes | None:
        lanes = self._split(ids)
        counts = [len(lane) for lane in lanes]
        n_lanes, longest = len(lanes), counts[0]
        bos = self.meta["bos"]
        inputs = np.full((n_lanes, longest), bos, dtype=np.int64)
        targets = np.zeros((n_lanes, longest), dtype=np.int64)
        for i, lane in enumerate(lanes):
            inputs[i, 1 : len(lane)] = lane[:-1]
            targets[i, : len(lane)] = lane
        engine = self.engine
        out = np.empty(max(16, size), dtype=np.uint8)
        state = np.zeros(4, dtype=np.int64)
        coding.start(False, out, state)
        cum = np.empty(self.meta["vocab"] + 1, dtype=np.int64)
        vocab = self.meta["vocab"]
        chunk = max(1, SCRATCH_BUDGET // (n_lanes * 8 * max(vocab, self.meta["heads"] * self.window)))
        for ctx, first, end in self._segments(longest, self.window, self.overlap):
            cache = engine.new_cache(n_lanes, self.window)
            if first > ctx:
                engine.forward(cache, inputs[:, ctx:first], logits="none")
            for a in range(first, end, chunk):
                b = min(end, a + chunk)
                logits = engine.xp.numpy(engine.forward(cache, inputs[:, a:b]))
                for j in range(a, b):
                    nact = sum(1 for c in counts if c > j)
                    freqs = np.empty((nact, vocab), dtype=np.int64)
                    coding.frequencies(np.ascontiguousarray(logits[:nact, j - a]), engine.exp_table, freqs)
                    if not coding.code_tokens(False, state, out, out, freqs, targets[:nact, j].copy(), cum):
                        return None
        coded = int(coding.finish(False, state, out))
        if coded < 0:
            return None
        head = bytes([MODE_TOKENS]) + _varint(n_lanes) + _varint(self.window) + _varint(self.overlap)
        return head + b"".join(_varint(c) for c in counts) + out[:coded].tobytes()

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, payload: bytes, size: int, threads: int = 1) -> bytes:
        if payload[:1] == bytes([MODE_FALLBACK]):
            return FALLBACK.decode(payload[1:], size)
        try:
            if payload[:1] != bytes([MODE_TOKENS]):
                raise ValueError
            pos = 1
            n_lanes, pos = _read_varint(payload, pos)
            window, pos = _read_varint(payload, pos)
            overlap, pos = _read_varint(payload, pos)
            counts = []
            for _ in range(n_lanes):
                c, pos = _read_varint(payload, pos)
                counts.append(c)
            shape_ok = 1 <= n_lanes <= MAX_LANES and 1 <= window <= self.meta["max_window"] and overlap < window
            if not shape_ok or sum(counts) > size or counts != sorted(counts, reverse=True) or counts[-1] < 1:
                raise ValueError
        except (ValueError, IndexError):
            return bytes(size)  # damaged: the container's checksum reports it
        lanes = self._decode_lanes(payload[pos:], counts, window, overlap)
        data = b"".join(self.codec.decode(lane) for lane in lanes)
        return data[:size].ljust(size, b"\0")

    def _decode_lanes(self, coded: bytes, counts: list[int], window: int, overlap: int) -> list[list[int]]:
        segments = self._segments(counts[0], window, overlap)
        engine = self.engine
        n_lanes, vocab, bos = len(counts), self.meta["vocab"], self.meta["bos"]
        src = np.frombuffer(coded, dtype=np.uint8)
        state = np.zeros(4, dtype=np.int64)
        coding.start(True, src, state)
        cum = np.empty(vocab + 1, dtype=np.int64)
        scratch = np.zeros(1, dtype=np.uint8)  # the kernel's output argument, unused when decoding
        inputs = np.full((n_lanes, counts[0]), bos, dtype=np.int64)
        decoded = np.zeros((n_lanes, counts[0]), dtype=np.int64)
        for ctx, first, end in segments:
            cache = engine.new_cache(n_lanes, window)
            logits = engine.xp.numpy(engine.forward(cache, inputs[:, ctx : first + 1], logits="last"))[:, 0]
            for j in range(first, end):
                nact = sum(1 for c in counts if c > j)
                freqs = np.empty((nact, vocab), dtype=np.int64)
                coding.frequencies(np.ascontiguousarray(logits[:nact]), engine.exp_table, freqs)
                toks = np.zeros(nact, dtype=np.int64)
                coding.code_tokens(True, state, src, scratch, freqs, toks, cum)
                decoded[:nact, j] = toks
                if j + 1 < counts[0]:
                    inputs[:nact, j + 1] = toks
                    if j + 1 < end:
                        logits = engine.xp.numpy(engine.forward(cache, inputs[:, j + 1 : j + 2]))[:, 0]
        return [decoded[i, : counts[i]].tolist() for i in range(n_lanes)]
