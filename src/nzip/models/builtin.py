"""The models shipped in the package, by level and by identifier.

Importing this module loads numba and the compiled kernels; the registry in
:mod:`nzip.models` does so on first use only.

Levels 1-3: adaptive context mixing only (MB/s).  Levels 4-9: the shipped
neural network mixed with level 3's contexts (tens of KB/s); in this
version they all use the same model.
"""

from __future__ import annotations

from . import MAX_LEVEL
from .base import Model
from .cm import LEVEL_MODELS as CM_MODELS
from .neural import NeuralMixModel

NEURAL = NeuralMixModel(
    "nn3",
    CM_MODELS[3],
    "gru320b",
    "byte-level GRU (320 units, int8, output layer learning as it codes) mixed with level 3's contexts; "
    "a frame level 3 codes smaller is coded by level 3",
    adapt_rate=524,
    variant=2,
    fallback=CM_MODELS[3],
)
#: The default levels before nn3 (the same network without the level-3 fallback): kept so that its archives decode.
NEURAL_V2 = NeuralMixModel(
    "nn2",
    CM_MODELS[3],
    "gru320b",
    "byte-level GRU (320 units, int8, output layer learning as it codes) mixed with level 3's contexts",
    adapt_rate=524,
    variant=2,
)
#: The first neural model (nzip 0.x before nn2): kept so that its archives decode.
NEURAL_V1 = NeuralMixModel(
    "nn1",
    CM_MODELS[3],
    "gru320a",
    "byte-level GRU (320 units, int8) mixed with level 3's contexts",
)
LEVEL_MODELS: dict[int, Model] = {**CM_MODELS, **{level: NEURAL for level in range(4, MAX_LEVEL + 1)}}

#: Every built-in model, the decoders of older archives included.
ALL: tuple[Model, ...] = (*CM_MODELS.values(), NEURAL, NEURAL_V2, NEURAL_V1)
