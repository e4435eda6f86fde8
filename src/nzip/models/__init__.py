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

MIN_LEVEL = 1
MAX_LEVEL = 9
#: Level used when none is given: the neural model.
DEFAULT_LEVEL = 6

# The built-in models live in .builtin, imported on first use: importing
# them loads numba and the kernels (about half a second), which listing an
# archive, --help or an empty input never need.
_BUILTIN_NAMES = ("NEURAL", "NEURAL_V2", "NEURAL_V1", "LEVEL_MODELS")
_registry: dict[str, Model] | None = None
_registered: dict[str, Model] = {}


def __getattr__(name: str) -> object:
    if name in _BUILTIN_NAMES:
        from . import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lookup(name: str) -> Model | None:
    """A model by identifier; the context-mixing ones without loading the network's modules."""
    if name in _registered:
        return _registered[name]
    if name in ("cm1", "cm2", "cm3"):
        from .cm import LEVEL_MODELS as CM_MODELS

        return next(m for m in CM_MODELS.values() if m.name == name)
    return _models().get(name)


def _models() -> dict[str, Model]:
    """Every model by identifier: the built-in ones, then those registered by the program."""
    global _registry
    if _registry is None:
        from .builtin import ALL

        _registry = {m.name: m for m in ALL}
    return {**_registry, **_registered}


def register(model: Model) -> None:
    """Make ``model`` available for decoding (and for :func:`model_for_level` users)."""
    _registered[model.name] = model


def registered_models() -> list[Model]:
    """Every model this installation can decode with."""
    return list(_models().values())


def named_model(name: str) -> Model:
    """A built-in or registered model, or a language model from the store, by name."""
    model = _lookup(name)
    if model is not None:
        return model
    from ..llm import store

    return store.load(name)


def check_level(level: int) -> None:
    """Raise ``ValueError`` unless ``level`` is 1 to 9 (without loading any model)."""
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level}")


def model_for_level(level: int) -> Model:
    """The model compression at ``level`` (1 to 9) uses."""
    check_level(level)
    if level <= 3:
        from .cm import LEVEL_MODELS as CM_MODELS

        return CM_MODELS[level]
    from .builtin import LEVEL_MODELS

    return LEVEL_MODELS[level]


def resolve(name: str, digest: bytes) -> Model:
    """The installed model named ``name`` whose digest is ``digest``.

    Raises :class:`ModelMismatchError` naming what the archive needs when it
    is missing or has different parameters.
    """
    model = _lookup(name)
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
    "check_level",
    "model_for_level",
    "named_model",
    "register",
    "registered_models",
    "resolve",
]
