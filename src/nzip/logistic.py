"""Integer logistic functions: ``squash`` and its inverse ``stretch``.

Context mixing works in the logistic ("stretch") domain, ``ln(p / (1 - p))``,
and maps back to probabilities with the logistic ("squash") function.  Every
probability that reaches the arithmetic coder passes through these tables, so
they must be identical on every machine.  They are therefore built from the
integer knots below by integer interpolation only: no ``exp`` or ``log`` from a
platform's maths library is ever evaluated at run time.

Units:

* probabilities are 16-bit integers, ``p / 65536`` being the probability of a
  1 bit;
* the stretch domain is in 1/256 of a nat and spans ``[-STRETCH_MAX,
  STRETCH_MAX]`` (about +-12 nats, which covers every 16-bit probability).

The knots are ``round(65536 / (1 + exp(-x / 256)))`` for ``x`` from -3072 to
3072 in steps of 32; they were computed once and are part of the format: a
change to them changes every archive and needs a new model identifier.
"""

from __future__ import annotations

import numpy as np

STRETCH_MAX = 3072
_STEP_SHIFT = 5  # knots every 32 units

_KNOTS = (
    0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2,
    2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 6, 7,
    8, 9, 10, 12, 13, 15, 17, 19, 22, 25, 28, 32,
    36, 41, 47, 53, 60, 68, 77, 87, 98, 111, 126, 143,
    162, 184, 208, 236, 267, 302, 342, 387, 439, 497, 562, 636,
    720, 815, 922, 1042, 1179, 1333, 1506, 1701, 1921, 2168, 2446, 2758,
    3108, 3500, 3938, 4427, 4971, 5577, 6249, 6992, 7812, 8714, 9702, 10782,
    11955, 13226, 14595, 16062, 17625, 19282, 21025, 22849, 24743, 26695, 28693, 30723,
    32768, 34813, 36843, 38841, 40793, 42687, 44511, 46254, 47911, 49474, 50941, 52310,
    53581, 54754, 55834, 56822, 57724, 58544, 59287, 59959, 60565, 61109, 61598, 62036,
    62428, 62778, 63090, 63368, 63615, 63835, 64030, 64203, 64357, 64494, 64614, 64721,
    64816, 64900, 64974, 65039, 65097, 65149, 65194, 65234, 65269, 65300, 65328, 65352,
    65374, 65393, 65410, 65425, 65438, 65449, 65459, 65468, 65476, 65483, 65489, 65495,
    65500, 65504, 65508, 65511, 65514, 65517, 65519, 65521, 65523, 65524, 65526, 65527,
    65528, 65529, 65530, 65530, 65531, 65532, 65532, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65535, 65535, 65535, 65535, 65535, 65535, 65535, 65535, 65535, 65536,
    65536,
)  # fmt: skip


def _build_squash() -> np.ndarray:
    """``SQUASH[d + STRETCH_MAX]`` for every ``d`` in the stretch domain, in [1, 65535]."""
    knots = np.array(_KNOTS, dtype=np.int64)
    d = np.arange(2 * STRETCH_MAX + 1, dtype=np.int64)
    i = d >> _STEP_SHIFT
    f = d & ((1 << _STEP_SHIFT) - 1)
    hi = np.minimum(i + 1, len(knots) - 1)
    v = (knots[i] * ((1 << _STEP_SHIFT) - f) + knots[hi] * f) >> _STEP_SHIFT
    return np.clip(v, 1, 65535).astype(np.int32)


def _build_stretch(squash: np.ndarray) -> np.ndarray:
    """``STRETCH[p]``: the smallest ``d`` with ``squash(d) >= p``, for p in 0..65535."""
    p = np.arange(65536, dtype=np.int64)
    d = np.searchsorted(squash.astype(np.int64), p, side="left")
    d = np.minimum(d, 2 * STRETCH_MAX)
    return (d - STRETCH_MAX).astype(np.int32)


SQUASH = _build_squash()
STRETCH = _build_stretch(SQUASH)
