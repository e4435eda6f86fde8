"""Bit-exact integer inference of the byte-level GRU (numpy and numba, no PyTorch).

Every number that influences a prediction is an integer, so the frequencies
this engine produces are the same on every CPU, thread count and batch size.
The matrix products are integer products too (:mod:`nzip.nn.intmm`: int16
operands holding int8 weights and states, int32 sums, no BLAS).  Earlier
versions made them in float32 BLAS, exact because every partial sum stayed
below 2**24 (:data:`MAX_INNER`, :data:`ADAPT_MAX_INNER`); the integer
products give the same numbers, so the bounds still hold the models' shapes
where archives expect them.

One step for a batch of lanes (``Q8``: units of 1/256, ``Q14``: of 1/16384)::

    gi        = table0[input byte]                       (layer 0, Q8)
              | requant(W_ih h8_below) + b_in            (deeper layers)
    gh        = requant(W_hh h8)                         (Q8; + b_hn for the n gate)
    r, z      = SIGMOID[gi_r + gh_r], SIGMOID[gi_z + gh_z]         (Q14)
    n         = TANH[gi_n + (r * gh_n + 2**13 >> 14)]              (Q14)
    h         = n + (z * (h - n) + 2**13 >> 14)                    (Q14)
    h8        = clip(h + 64 >> 7, -127, 127)
    logits    = requant(W_out h8) + b_out                          (Q8)
    freqs     = 1 + (EXP[max - logit] * (65280 * 2**32 // sum) >> 32), the rest to the first maximum

where ``requant(acc) = acc * m_row + 2**23 >> 24``, lookup tables clip their
Q8 index to [-2048, 2047] (exp: to [0, 4095]), and the frequencies sum to
exactly 65536.  :mod:`nzip.nn.torch_engine` implements the same arithmetic in
PyTorch as an independent check.

Optionally the output layer keeps learning while it codes (dynamic
evaluation): after each step, :meth:`GRUEngine.learn` takes one SGD step on
the output weights and biases, shared by all lanes, towards the bytes that
were actually there.  In integers, with ``rate`` the learning rate in units
of 2**-20 and ``gain_s = min(2**18 - 1, rate * 2**22 // m_out[s])``::

    err       = freqs - 65536 * onehot(byte) + 128 >> 8       (lanes, 256), |err| <= 256
    grad      = h8^T err                                      (hidden, 256), |grad| < 2**24
    delta    -= (grad + 128 >> 8) * gain_s + 128 >> 8         Q16 weight units, clipped to +-255
    w_eff     = clip(w_out + (delta + 2**15 >> 16), -255, 255)
    bias     -= rate * sum_lanes(err) + 8 >> 4                Q16 of Q8 logits, clipped to +-16 logits

and the logits use ``w_eff`` and ``b_out + (bias + 2**15 >> 16)``.  With at
most :data:`ADAPT_MAX_LANES` lanes and :data:`ADAPT_MAX_INNER` hidden units
both products would be exact even in float32.  Measured with the float model on
alice29.txt, the network alone drops from 2.20 to 1.96 bits per byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numba import njit

from .export import FORMAT_VERSION, LUT_SIZE, MULT_SHIFT
from .intmm import matmul, padded

MAX_INNER = 1040  # 1040 * 127 * 127 < 2**24
FREQ_TOTAL = 1 << 16
START_BYTE = 10  # what a lane "read" before its first byte: a line feed

ADAPT_MAX_LANES = 64  # 64 * 256 * 127 < 2**24: the gradient product is exact
ADAPT_MAX_INNER = 518  # 518 * 255 * 127 < 2**24: products with adapted weights are exact
ADAPT_MAX_GAIN = (1 << 18) - 1  # (|grad| >> 8) * gain stays inside int32
_DELTA_LIMIT = 255 << 16
_BIAS_LIMIT = (16 * 256) << 16

_ROUND = 1 << (MULT_SHIFT - 1)
_HALF_LUT = LUT_SIZE // 2


@njit(cache=True, inline="always")
def _lut_index(v):
    return min(max(v + _HALF_LUT, 0), LUT_SIZE - 1)


@njit(cache=True, nogil=True)
def _requant(acc, mult, bias, out):
    """``out = (acc * mult + 2**23 >> 24) + bias`` row by row (acc holds exact integers)."""
    for b in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[b, j] = ((np.int64(acc[b, j]) * mult[j] + _ROUND) >> MULT_SHIFT) + bias[j]


@njit(cache=True, nogil=True)
def _gru_update(gi, rows, acc, mult, b_hn, h, h8, sig, tanh):
    """Advance the state ``h`` (Q14, in place) and write its int8 form ``h8`` (as int16, for products).

    Lane ``b``'s input pre-activations are ``gi[rows[b]]`` (layer 0: rows of
    the input table, indexed by byte; deeper layers: their own row).
    """
    hd = h.shape[1]
    for b in range(h.shape[0]):
        gb, ab, hb, h8b = gi[rows[b]], acc[b], h[b], h8[b]
        for j in range(hd):
            gr = (np.int64(ab[j]) * mult[j] + _ROUND) >> MULT_SHIFT
            gz = (np.int64(ab[hd + j]) * mult[hd + j] + _ROUND) >> MULT_SHIFT
            gn = ((np.int64(ab[2 * hd + j]) * mult[2 * hd + j] + _ROUND) >> MULT_SHIFT) + b_hn[j]
            r = np.int64(sig[_lut_index(gb[j] + gr)])
            z = np.int64(sig[_lut_index(gb[hd + j] + gz)])
            n = np.int64(tanh[_lut_index(gb[2 * hd + j] + ((r * gn + 8192) >> 14))])
            v = n + ((z * (np.int64(hb[j]) - n) + 8192) >> 14)
            hb[j] = v
            h8b[j] = min(127, max(-127, (v + 64) >> 7))


@njit(cache=True, nogil=True)
def _softmax_freqs(acc, mult, bias, lut_exp, freqs):
    """Integer softmax: frequencies >= 1 per symbol, summing to exactly 65536 per row."""
    n = acc.shape[1]
    logits = np.empty(n, dtype=np.int64)
    e = np.empty(n, dtype=np.int64)
    for b in range(acc.shape[0]):
        best = 0
        for j in range(n):
            logits[j] = ((np.int64(acc[b, j]) * mult[j] + _ROUND) >> MULT_SHIFT) + bias[j]
            if logits[j] > logits[best]:
                best = j
        top = logits[best]
        total = np.int64(0)
        for j in range(n):
            e[j] = lut_exp[min(top - logits[j], LUT_SIZE - 1)]
            total += e[j]
        recip = ((FREQ_TOTAL - n) << 32) // total
        used = np.int64(0)
        for j in range(n):
            f = 1 + ((e[j] * recip) >> 32)
            freqs[b, j] = f
            used += f
        freqs[b, best] += FREQ_TOTAL - used


@njit(cache=True, nogil=True)
def _output_error(freqs, targets, active, err, bias, rate, cols):
    """Quantized ``p - onehot`` of lanes ``< active``, packed to the symbols where it is non-zero.

    Writes those symbols to ``cols`` and their errors to the rows ``err[:k]``
    (one row per symbol, one column per lane; other lanes zero), updates the
    bias offsets, and returns ``k``.  Most symbols' errors round to zero, and
    skipping them changes nothing.
    """
    lanes, n = freqs.shape
    k = 0
    for s in range(n):
        total = np.int64(0)
        row = err[k]
        for b in range(active):
            v = (freqs[b, s] + 128) >> 8
            if s == targets[b]:
                v = (freqs[b, s] - FREQ_TOTAL + 128) >> 8
            row[b] = v
            total += v
        bias[s] = min(_BIAS_LIMIT, max(-_BIAS_LIMIT, bias[s] - ((rate * total + 8) >> 4)))
        nonzero = False
        for b in range(active):
            if row[b] != 0:
                nonzero = True
                break
        if nonzero:
            for b in range(active, lanes):
                row[b] = 0
            cols[k] = s
            k += 1
    return k


@njit(cache=True, nogil=True)
def _adapt_weights(grad, cols, gain, w_out, delta, w_eff):
    """One SGD step on the output weights' offsets of symbols ``cols``, and the weights the next step uses.

    ``grad[c]`` is the gradient row of symbol ``cols[c]``; ``w_out``,
    ``delta`` and ``w_eff`` hold one row per symbol.  Every operand fits in
    32 bits (``gain`` below 2**18, ``delta`` within +-255 * 2**16) and only
    the product is widened, so the loop runs as 32x32->64-bit vector
    multiplies; the values are those of 64-bit arithmetic throughout.
    """
    for c in range(cols.shape[0]):
        s = cols[c]
        gs = np.int64(gain[s])
        gr, dr, wr, er = grad[c], delta[s], w_out[s], w_eff[s]
        for j in range(gr.shape[0]):
            g = np.int64((gr[j] + np.int32(128)) >> np.int32(8))
            step = np.int32((g * gs + 128) >> 8)
            d = min(np.int32(_DELTA_LIMIT), max(np.int32(-_DELTA_LIMIT), dr[j] - step))
            dr[j] = d
            er[j] = min(np.int32(255), max(np.int32(-255), np.int32(wr[j]) + ((d + np.int32(32768)) >> np.int32(16))))


@njit(cache=True, nogil=True)
def step_one_layer(inputs, table0, w_hh, m_hh, b_hn, sig, tanh, h, h8, acc, w_out, m_out, out_bias, lut_exp, freqs):
    """:meth:`GRUEngine.step` of a one-layer network as one compiled call, for loops that stay compiled.

    ``acc`` is scratch of ``(lanes, 3 * hidden)``; ``w_out`` and ``out_bias``
    are the output weights and biases in use (learned ones when it learns).
    """
    matmul(h8, w_hh, acc)
    _gru_update(table0, inputs, acc, m_hh, b_hn, h, h8, sig, tanh)
    logits = np.empty((h8.shape[0], w_out.shape[0]), dtype=np.int32)
    matmul(h8, w_out, logits)
    _softmax_freqs(logits, m_out, out_bias, lut_exp, freqs)


@njit(cache=True, nogil=True)
def learn_step(freqs, targets, active, err, bias, rate, cols, b_out, bias_in_use, h8, h8_t, gain, w_out, delta, w_eff):
    """The whole learning step of :meth:`GRUEngine.learn` as one compiled call (no Python between its parts)."""
    k = _output_error(freqs, targets, active, err, bias, rate, cols)
    for s in range(bias.shape[0]):
        bias_in_use[s] = b_out[s] + ((bias[s] + 32768) >> 16)
    hidden = h8_t.shape[0]
    for b in range(freqs.shape[0]):
        for u in range(hidden):
            h8_t[u, b] = h8[b, u]
    grad = np.empty((k, hidden), dtype=np.int32)
    matmul(err[:k], h8_t, grad)
    _adapt_weights(grad, cols[:k], gain, w_out, delta, w_eff)


@dataclass
class Adaptation:
    """The output layer of one frame as it learns (see :meth:`GRUEngine.learn`)."""

    rate: int  # learning rate in units of 2**-20
    gain: np.ndarray  # (256,) int32: rate over each output row's scale, below 2**18
    w_eff: np.ndarray  # (256, inner) int16 in [-255, 255]: the weights in use, a row per symbol
    delta: np.ndarray  # (256, hidden) int32: learned offsets, Q16 weight units, within +-255 * 2**16
    bias: np.ndarray  # (256,) int64: learned bias offsets, Q16 of Q8 logits
    err: np.ndarray  # (256, padded lanes) int16 scratch: the last step's quantized errors, a row per symbol
    h8_t: np.ndarray  # (hidden, padded lanes) int16 scratch: the top layer's h8, a row per unit
    cols: np.ndarray  # (256,) int64 scratch: the symbols whose errors are non-zero
    bias_in_use: np.ndarray  # (256,) int64: the output biases the next step uses (b_out plus the learned part)


@dataclass
class State:
    """Hidden state of a batch of lanes: Q14 integers, and their int8 form for products."""

    h: list[np.ndarray]  # per layer, (lanes, hidden) int32
    h8: list[np.ndarray]  # per layer, (lanes, inner) int16 in [-127, 127]; columns past hidden stay 0
    adapt: Adaptation | None = None  # the output layer's learned part, if it learns


class GRUEngine:
    """A loaded integer model; :meth:`step` advances a batch of lanes by one byte."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        a = {k: np.asarray(v) for k, v in arrays.items()}
        if int(a["format"][0]) != FORMAT_VERSION:
            raise ValueError(f"unsupported neural model format {int(a['format'][0])}")
        self.hidden, self.layers = (int(v) for v in a["shape"])
        if not 1 <= self.hidden <= MAX_INNER or self.layers < 1:
            raise ValueError("neural model shape out of range")
        self.inner = padded(self.hidden)  # the products' inner dimension: hidden, zero-padded
        g = 3 * self.hidden
        self._check(a, "table0", np.int32, (256, g))
        self._check(a, "w_out", np.int8, (256, self.hidden))
        self.digest = _digest(a)
        self.table0 = a["table0"]
        self.w_hh = [self._weights(a, f"w_hh{k}", g) for k in range(self.layers)]
        self.m_hh = [self._mult(a, f"m_hh{k}", g) for k in range(self.layers)]
        self.b_hn = [a[f"b_hn{k}"].astype(np.int64) for k in range(self.layers)]
        self.w_ih = [self._weights(a, f"w_ih{k}", g) for k in range(1, self.layers)]
        self.m_ih = [self._mult(a, f"m_ih{k}", g) for k in range(1, self.layers)]
        self.b_in = [a[f"b_in{k}"].astype(np.int64) for k in range(1, self.layers)]
        self.w_out = self._weights(a, "w_out", 256)
        self.m_out = self._mult(a, "m_out", 256)
        self.b_out = a["b_out"].astype(np.int64)
        self.sigmoid = a["lut_sigmoid"].astype(np.int32)
        self.tanh = a["lut_tanh"].astype(np.int32)
        self.exp = a["lut_exp"].astype(np.int64)
        for name in ("lut_sigmoid", "lut_tanh", "lut_exp"):
            self._check(a, name, np.int32, (LUT_SIZE,))
        if self.exp.min() < 0 or self.exp[0] <= 0 or self.exp.max() > 1 << 16:
            raise ValueError("neural model exp table out of range")

    @staticmethod
    def _check(a: dict[str, np.ndarray], name: str, dtype: type, shape: tuple[int, ...]) -> None:
        if name not in a or a[name].dtype != dtype or a[name].shape != shape:
            raise ValueError(f"neural model array {name!r} missing or malformed")

    def _weights(self, a: dict[str, np.ndarray], name: str, rows: int) -> np.ndarray:
        """A weight matrix as int16 rows (one per output) of :attr:`inner` columns, zero past ``hidden``."""
        self._check(a, name, np.int8, (rows, self.hidden))
        w = np.zeros((rows, self.inner), dtype=np.int16)
        w[:, : self.hidden] = a[name]
        return w

    def _mult(self, a: dict[str, np.ndarray], name: str, rows: int) -> np.ndarray:
        self._check(a, name, np.int64, (rows,))
        m = a[name]
        if m.min() < 0 or m.max() >= 1 << 36:  # acc * m stays far inside int64
            raise ValueError(f"neural model multipliers {name!r} out of range")
        return m

    @classmethod
    def load(cls, path) -> GRUEngine:
        with np.load(path, allow_pickle=False) as f:
            return cls({k: f[k] for k in f.files})

    @classmethod
    def packaged(cls, name: str) -> GRUEngine:
        """A model shipped inside the package (``nzip/nn/weights/<name>.npz``)."""
        with resources.files(__package__).joinpath("weights", f"{name}.npz").open("rb") as f:
            return cls.load(f)

    def new_state(self, lanes: int, rate: int = 0) -> State:
        """A zero state for ``lanes`` lanes; ``rate > 0`` lets the output layer learn (units of 2**-20)."""
        adapt = None
        if rate:
            if not 0 < rate < 1 << 20 or lanes > ADAPT_MAX_LANES or self.hidden > ADAPT_MAX_INNER:
                raise ValueError("adaptive output layer: rate, lanes or hidden size out of range")
            m = self.m_out
            gain = np.where(m > 0, (rate << 22) // np.maximum(m, 1), 0)
            adapt = Adaptation(
                rate,
                np.minimum(gain, ADAPT_MAX_GAIN).astype(np.int32),
                self.w_out.copy(),
                np.zeros((256, self.hidden), dtype=np.int32),
                np.zeros(256, dtype=np.int64),
                np.zeros((256, padded(lanes)), dtype=np.int16),
                np.zeros((self.hidden, padded(lanes)), dtype=np.int16),
                np.zeros(256, dtype=np.int64),
                self.b_out.copy(),
            )
        return State(
            [np.zeros((lanes, self.hidden), dtype=np.int32) for _ in range(self.layers)],
            [np.zeros((lanes, self.inner), dtype=np.int16) for _ in range(self.layers)],
            adapt,
        )

    def step(self, state: State, inputs: np.ndarray, freqs: np.ndarray, lanes: slice = slice(None)) -> None:
        """Read one byte per lane (``inputs``), then write each lane's next-byte frequencies into ``freqs``.

        With ``lanes``, only those rows of ``inputs``, ``freqs`` and the
        state: lanes are independent within a step, so threads may step
        disjoint ranges at once (see :mod:`nzip.nn.workers`).
        """
        inputs, freqs = inputs[lanes], freqs[lanes]
        h, h8 = [v[lanes] for v in state.h], [v[lanes] for v in state.h8]
        gi, rows = self.table0, inputs
        for k in range(self.layers):
            if k > 0:
                acc_in = _product(h8[k - 1], self.w_ih[k - 1])
                gi, rows = np.empty((len(inputs), 3 * self.hidden), dtype=np.int64), np.arange(len(inputs))
                _requant(acc_in, self.m_ih[k - 1], self.b_in[k - 1], gi)
            acc = _product(h8[k], self.w_hh[k])
            _gru_update(gi, rows, acc, self.m_hh[k], self.b_hn[k], h[k], h8[k], self.sigmoid, self.tanh)
        a = state.adapt
        if a is None:
            _softmax_freqs(_product(h8[-1], self.w_out), self.m_out, self.b_out, self.exp, freqs)
        else:
            _softmax_freqs(_product(h8[-1], a.w_eff), self.m_out, a.bias_in_use, self.exp, freqs)

    def learn(self, state: State, targets: np.ndarray, freqs: np.ndarray, active: int) -> None:
        """Train the output layer on the bytes the last :meth:`step` predicted with ``freqs``.

        ``targets[j]`` is lane ``j``'s actual byte; only lanes ``< active``
        count.  Call it before the next step (which changes the state).
        """
        a = state.adapt
        learn_step(
            freqs, targets, active, a.err, a.bias, a.rate, a.cols, self.b_out, a.bias_in_use, state.h8[-1], a.h8_t,
            a.gain, self.w_out, a.delta, a.w_eff,
        )  # fmt: skip


def _product(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w.T`` exactly, in int32 (rows of int16 along the inner dimension)."""
    out = np.empty((a.shape[0], w.shape[0]), dtype=np.int32)
    matmul(a, w, out)
    return out


def _digest(arrays: dict[str, np.ndarray]) -> bytes:
    """SHA-256 of every array's name, dtype, shape and bytes: the model's identity."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        v = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{v.dtype.str}:{v.shape};".encode())
        h.update(v.tobytes())
    return h.digest()
