"""The model store: where imported language models live, found by name and digest.

The store is a directory (``$NZIP_MODELS``, else the user data directory:
``$XDG_DATA_HOME/nzip/models`` or ``~/.local/share/nzip/models`` on Linux,
``~/Library/Application Support/nzip/models`` on macOS,
``%LOCALAPPDATA%\\nzip\\models`` on Windows) holding one ``NAME.nzm`` per
model.  An archive names its model by name and digest only; a decoder looks
for ``NAME.nzm`` here and checks its digest, so nothing in an archive can
point nzip at another file.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelMismatchError, NzipError
from . import modelfile
from .model import ARITHMETIC, LanguageModel, archive_digest, arithmetic_of

SUFFIX = ".nzm"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
RESERVED = {"cm1", "cm2", "cm3", "nn1", "nn2", "nn3"}

_loaded: dict[tuple[str, str, str, int], LanguageModel] = {}  # path, file digest, engine, arithmetic
_loaded_lock = threading.Lock()
ENGINES = ("numpy", "torch", "torch-ops", "cuda")
_default_engine = os.environ.get("NZIP_ENGINE", "numpy")


def set_default_engine(engine: str) -> None:
    """The engine models loaded from now on run on (``nzip --engine``; ``$NZIP_ENGINE``)."""
    global _default_engine
    if engine not in ENGINES and not engine.startswith("cuda:"):
        raise StoreError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    _default_engine = engine


class StoreError(NzipError):
    """A model store operation failed (bad name, missing model, unreadable model file)."""


class ModelNotFoundError(StoreError):
    """No model of that name is in the store."""


def store_dir() -> Path:
    """The directory models are imported into and looked up in."""
    env = os.environ.get("NZIP_MODELS")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nzip" / "models"


def valid_name(name: str) -> bool:
    """Whether ``name`` could name a stored model."""
    return bool(_NAME.fullmatch(name)) and name not in RESERVED


def check_name(name: str) -> str:
    """``name`` if it can name a stored model (ASCII, no path separators, not a built-in model)."""
    if not valid_name(name):
        raise StoreError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_', '+' or '-', not a built-in name"
        )
    return name


def model_path(name: str) -> Path:
    return store_dir() / (check_name(name) + SUFFIX)


@dataclass
class StoredModel:
    """One entry of the store, described from its header only."""

    name: str
    path: Path
    meta: dict
    info: dict
    file_digest: str
    arithmetic: int = ARITHMETIC  # the engine arithmetic new archives use

    @property
    def digest(self) -> bytes:
        return archive_digest(self.file_digest, self.arithmetic)

    @property
    def parameters(self) -> int:
        m = self.meta
        attention = m["hidden"] * m["head_dim"] * (2 * m["heads"] + 2 * m["kv_heads"])
        per_layer = attention + 3 * m["hidden"] * m["intermediate"]
        return m["layers"] * per_layer + m["vocab"] * m["hidden"] * (1 if m["tied"] else 2)


def describe(name: str) -> StoredModel:
    """The stored model ``name`` (header only); :class:`StoreError` when absent or unreadable."""
    path = model_path(name)
    if not path.exists():
        raise ModelNotFoundError(
            f"model '{name}' is not in the model store ({store_dir()}); "
            f"import it with: nzip model import SOURCE --name {name}"
        )
    try:
        meta, info, _, digest, _ = modelfile.read_header(path)
    except (modelfile.ModelFileError, OSError) as e:
        raise StoreError(f"model '{name}' ({path}): {e}") from None
    return StoredModel(name, path, meta, info, digest)


def list_models() -> list[StoredModel]:
    """Every readable model in the store, by name."""
    out = []
    directory = store_dir()
    if directory.is_dir():
        for path in sorted(directory.glob("*" + SUFFIX)):
            try:
                out.append(describe(path.name[: -len(SUFFIX)]))
            except StoreError:
                continue
    return out


def load(name: str, digest: bytes | None = None, *, engine: str | None = None) -> LanguageModel:
    """The stored model ``name`` ready to code; with ``digest``, only if it is the one an archive needs.

    The engine changes speed, never the coded bits.
    """
    engine = engine or _default_engine
    entry = describe(name)
    arithmetic = entry.arithmetic if digest is None else arithmetic_of(entry.file_digest, digest)
    if arithmetic is None:
        raise ModelMismatchError(
            f"archive needs model '{name}' with digest {digest.hex()}, but the stored '{name}' has digest "
            f"{entry.digest.hex()} (a different model or version); import the right one under this name"
        )
    key = (str(entry.path), entry.file_digest, engine, arithmetic)
    with _loaded_lock:
        model = _loaded.get(key)
        if model is None:
            try:
                model = LanguageModel(name, str(entry.path), engine=engine, arithmetic=arithmetic)
            except modelfile.ModelFileError as e:
                raise StoreError(f"model '{name}' ({entry.path}): {e}") from None
            _loaded[key] = model
    return model


def remove(name: str) -> Path:
    path = describe(name).path
    path.unlink()
    with _loaded_lock:
        for key in [k for k in _loaded if k[0] == str(path)]:
            del _loaded[key]
    return path
