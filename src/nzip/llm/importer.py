"""``nzip model import``: read a Hugging Face folder or a GGUF file, quantize, store."""

from __future__ import annotations

import re
import time
from pathlib import Path

from .. import __version__
from . import modelfile, store
from .quantize import DEFAULT_MAX_WINDOW, quantize
from .source import SourceModel, UnsupportedModelError


def read_source(source: str | Path) -> SourceModel:
    """The float model at ``source``: a Hugging Face folder or a ``.gguf`` file."""
    path = Path(source)
    if path.is_dir():
        from .import_hf import read_folder

        return read_folder(path)
    if not path.exists():
        raise UnsupportedModelError(f"{path}: no such file or directory")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        from .import_gguf import read_gguf

        return read_gguf(path)
    raise UnsupportedModelError(
        f"{path.name}: unsupported model file (expected a Hugging Face model folder or a GGUF file)"
    )


def default_name(source: str | Path) -> str:
    stem = Path(source).resolve().name
    stem = stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", stem).lstrip("._+-")[:64]
    return name or "model"


def import_model(
    source: str | Path, name: str | None = None, *, force: bool = False, max_window: int = DEFAULT_MAX_WINDOW
) -> store.StoredModel:
    """Import ``source`` into the store as ``name`` (default: from the source's file name)."""
    name = store.check_name(name or default_name(source))
    target = store.model_path(name)
    if target.exists() and not force:
        raise store.StoreError(f"model '{name}' already exists in {target.parent}; use --force to replace it")
    src = read_source(source)
    meta, arrays = quantize(src, max_window=max_window)
    target.parent.mkdir(parents=True, exist_ok=True)
    info = {"source": src.source, "imported": time.strftime("%Y-%m-%d %H:%M:%S"), "nzip": __version__}
    modelfile.write(target, meta, arrays, info)
    return store.describe(name)
