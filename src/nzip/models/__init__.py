"""Model registry: which model each level uses, and lookup by archive header.

Archives name their model by identifier and digest.  Identifiers resolve to
models shipped in this package, models registered by the calling program,
or language models in the model store (:mod:`nzip.llm.store`), which is
looked up by name and digest only: nothing in an archive can make nzip load
a file of its choosing or run code.
"""

from __future__ import annotations

from ..errors import ModelMismatchError
from .base import Model
from .cm import LEVEL_MODELS as CM_MODELS
from .neural import NeuralMixModel

MIN_LEVEL = 1
MAX_LEVEL = 9
#: Level used when none is given: the neural model.
DEFAULT_LEVEL = 6

#: Levels 1-3: adaptive context mixing only (MB/s).  Levels 4-9: the shipped
#: neural network mixed with level 3's contexts (tens of KB/s); in this
#: version they all use the same model.
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

_REGISTRY: dict[str, Model] = {m.name: m for m in (*LEVEL_MODELS.values(), NEURAL_V2, NEURAL_V1)}


def register(model: Model) -> None:
    """Make ``model`` available for decoding (and for :func:`model_for_level` users)."""
    _REGISTRY[model.name] = model


def registered_models() -> list[Model]:
    """Every model this installation can decode with."""
    return list(_REGISTRY.values())


def named_model(name: str) -> Model:
    """A built-in or registered model, or a language model from the store, by name."""
    model = _REGISTRY.get(name)
    if model is not None:
        return model
    from ..llm import store

    return store.load(name)


def model_for_level(level: int) -> Model:
    """The model compression at ``level`` (1 to 9) uses."""
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level}")
    return LEVEL_MODELS[level]


def resolve(name: str, digest: bytes) -> Model:
    """The installed model named ``name`` whose digest is ``digest``.

    Raises :class:`ModelMismatchError` naming what the archive needs when it
    is missing or has different parameters.
    """
    model = _REGISTRY.get(name)
    if model is None:
        from ..llm import store

        if not store.valid_name(name):
            raise ModelMismatchError(f"archive needs model '{name}' ({digest.hex()}), which this nzip does not have")
        try:
            return store.load(name, digest)
        except store.ModelNotFoundError:
            raise ModelMismatchError(
                f"archive needs model '{name}' ({digest.hex()}), which this nzip does not have: it is not built in "
                f"and not in the model store ({store.store_dir()}); import it with: nzip model import SOURCE "
                f"--name {name}"
            ) from None
    if model.digest != digest:
        raise ModelMismatchError(
            f"archive needs model '{name}' with digest {digest.hex()}, "
            f"but the installed '{name}' has digest {model.digest.hex()}"
        )
    return model


__all__ = [
    "DEFAULT_LEVEL",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "Model",
    "model_for_level",
    "named_model",
    "register",
    "registered_models",
    "resolve",
]
