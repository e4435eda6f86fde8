"""nzip: lossless compression driven by predictive models.

The interface follows the standard library's ``gzip``, ``bz2`` and ``lzma``
modules::

    import nzip
    blob = nzip.compress(data, level=3)
    assert nzip.decompress(blob) == data
    with nzip.open("notes.txt.nz", "wt", encoding="utf-8") as f:
        f.write("hello")
"""

from __future__ import annotations

from .codec import Compressor, Decompressor, compress, decompress
from .errors import (
    CorruptDataError,
    ModelMismatchError,
    NotAnArchiveError,
    NzipError,
    TruncatedDataError,
    UnsupportedVersionError,
)
from .file import NzipFile, open  # noqa: A004 - mirrors gzip.open
from .models import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_LEVEL",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "Compressor",
    "CorruptDataError",
    "Decompressor",
    "ModelMismatchError",
    "NotAnArchiveError",
    "NzipError",
    "NzipFile",
    "TruncatedDataError",
    "UnsupportedVersionError",
    "compress",
    "decompress",
    "open",
]
