"""Turn trained float parameters into the integer model the engine runs.

This runs once, on the training machine; its floating-point rounding never
matters afterwards, because what it writes are integers: int8 weight matrices
with one integer multiplier per row, integer biases and lookup tables.  Those
integers *are* the model: the engine computes with nothing else.

Fixed-point conventions (see :mod:`nzip.nn.engine`):

* pre-activations and logits in units of 1/256 (``Q8``);
* the carried hidden state in units of 1/16384 (``Q14``); it enters matrix
  products as int8 in units of 1/128;
* a row's product ``acc`` (an exact integer) becomes ``Q8`` as
  ``(acc * m + 2**23) >> 24`` where ``m = round(scale * 2 * 2**24)`` and
  ``scale = max|row| / 127``.
"""

from __future__ import annotations

import numpy as np

FORMAT_VERSION = 1
MULT_SHIFT = 24
LUT_SIZE = 4096  # pre-activations clipped to [-8, 8) in Q8
STATE_ONE = 1 << 14  # Q14
PROB_ONE = 1 << 16


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and per-row multipliers for a float matrix whose products take int8 inputs in 1/128."""
    scale = np.maximum(np.abs(w).max(axis=1), 1e-8) / 127
    q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    mult = np.round(scale * 2 * (1 << MULT_SHIFT)).astype(np.int64)
    return q, mult


def lookup_tables() -> dict[str, np.ndarray]:
    """Sigmoid and tanh of Q8 inputs in Q14, and exp(-k/256) in Q16."""
    x = (np.arange(LUT_SIZE, dtype=np.float64) - LUT_SIZE // 2) / 256
    k = np.arange(LUT_SIZE, dtype=np.float64) / 256
    return {
        "lut_sigmoid": np.round(STATE_ONE / (1 + np.exp(-x))).astype(np.int32),
        "lut_tanh": np.round(STATE_ONE * np.tanh(x)).astype(np.int32),
        "lut_exp": np.round(PROB_ONE * np.exp(-k)).astype(np.int32),
    }


def q8(v: np.ndarray) -> np.ndarray:
    return np.round(v * 256).astype(np.int32)


def integer_model(params: dict[str, np.ndarray], hidden: int, layers: int) -> dict[str, np.ndarray]:
    """The engine's arrays from a :class:`nzip.nn.train.ByteGRU` state dict (as float64 arrays)."""
    h = hidden
    out: dict[str, np.ndarray] = {
        "format": np.array([FORMAT_VERSION], dtype=np.int32),
        "shape": np.array([hidden, layers], dtype=np.int32),
    }
    for k in range(layers):
        w_ih = params[f"gru.weight_ih_l{k}"]
        b_ih = params[f"gru.bias_ih_l{k}"].copy()
        b_hh = params[f"gru.bias_hh_l{k}"]
        b_ih[: 2 * h] += b_hh[: 2 * h]  # r and z: both biases simply add
        if k == 0:
            out["table0"] = q8(params["embed.weight"] @ w_ih.T + b_ih)
        else:
            out[f"w_ih{k}"], out[f"m_ih{k}"] = quantize_rows(w_ih)
            out[f"b_in{k}"] = q8(b_ih)
        out[f"w_hh{k}"], out[f"m_hh{k}"] = quantize_rows(params[f"gru.weight_hh_l{k}"])
        out[f"b_hn{k}"] = q8(b_hh[2 * h :])  # n: the bias sits inside r * (...)
    out["w_out"], out["m_out"] = quantize_rows(params["out.weight"])
    out["b_out"] = q8(params["out.bias"])
    out.update(lookup_tables())
    return out


def export_state(params: dict[str, np.ndarray], hidden: int, layers: int, path: str) -> None:
    """Write the integer model as an ``.npz`` file (plain arrays, no pickled objects)."""
    np.savez(path, **integer_model(params, hidden, layers))
