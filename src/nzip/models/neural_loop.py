"""A neural frame on one thread, in one compiled loop: network, lane kernel, learning, step after step.

The step-by-step driver in :mod:`nzip.models.neural` calls about six
compiled functions per step from Python, and each call unpacks its arrays
again: measured here, about 30 µs of a 65 µs step for a frame of one lane
(inputs under 4 KiB), where the step itself is small.  This loop makes the
same calls in the same order from compiled code, so it codes the same bits;
the driver uses it whenever a frame runs on one thread with a one-layer
network that learns (the shipped ``nn2`` and ``nn3``).  With more threads,
the step-by-step driver shares each step out (:mod:`nzip.nn.workers`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..nn.engine import START_BYTE, learn_step, step_one_layer
from .lanes_kernel import step


@njit(cache=True, nogil=True)
def run(
    decoding, steps, last_len, lane_len, n, src, dst, starts,
    table0, w_hh, m_hh, b_hn, sig, tanh, h, h8, m_out, lut_exp,
    err, bias, rate, cols, b_out, bias_in_use, h8_t, gain, w_out, delta, w_eff,
    params, table, match_table, lanes, rec, local, w_a, w_b, w_c, w_d, w_f, sm, msm, apm2, apm_nn, apm_o2,
    coder, variant, trace,
):  # fmt: skip
    """Code a frame of ``n`` bytes in lanes of ``lane_len``; False when the encoder's output is full.

    The arguments are the network's (one layer, the output layer learning
    at ``rate``), then the lane kernel's, as :func:`~nzip.models.lanes_kernel.step`
    takes them.  ``starts[j]`` is the first byte of lane ``j``.
    """
    count = h.shape[0]
    freqs = np.empty((count, 256), dtype=np.int64)
    inputs = np.full(count, START_BYTE, dtype=np.uint8)
    acc = np.empty((count, w_hh.shape[0]), dtype=np.int32)
    buf = dst if decoding else src
    for t in range(steps):
        step_one_layer(
            inputs, table0, w_hh, m_hh, b_hn, sig, tanh, h, h8, acc, w_eff, m_out, bias_in_use, lut_exp, freqs
        )  # fmt: skip
        active = count if t < last_len else count - 1
        if not step(
            decoding, t, active, lane_len, n, src, dst, freqs, params, table, match_table,
            lanes, rec, local, w_a, w_b, w_c, w_d, w_f, sm, msm, apm2, apm_nn, apm_o2, coder, variant, trace,
        ):  # fmt: skip
            return False
        for j in range(count):
            inputs[j] = buf[min(starts[j] + t, n - 1)]
        learn_step(
            freqs, inputs, active, err, bias, rate, cols, b_out, bias_in_use, h8, h8_t, gain, w_out, delta, w_eff
        )  # fmt: skip
    return True
