"""The nzip model file (``.nzm``): integer weights, tables and tokens, no code.

Layout (all integers little-endian)::

    magic     8 bytes  b"NZIPLLM\\x01"
    length    8 bytes  length of the JSON header
    header    JSON     {"meta": {...}, "info": {...},
                        "tensors": {name: [dtype, shape, offset, nbytes]}, "digest": hex}
    padding            to a multiple of 64
    data               the tensors, each 64-byte aligned, offsets relative to here

``digest`` is SHA-256 over the canonical JSON of ``meta`` and ``tensors`` and
then every tensor's bytes in name order; :func:`read` recomputes it, so a
damaged or edited file is refused instead of silently coding different bits.
``info`` (where the model came from, when) is descriptive only and outside
the digest: the same weights imported from a Hugging Face folder and from
a GGUF file have the same digest.
Only plain dtypes are allowed (no pickle, no objects): reading a file can
never run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

MAGIC = b"NZIPLLM\x01"
_ALIGN = 64
_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float32"}
MAX_HEADER = 64 << 20


class ModelFileError(ValueError):
    """The file is not a valid nzip model file (truncated, damaged or of another kind)."""


def _canonical(meta: dict, tensors: dict) -> bytes:
    return json.dumps({"meta": meta, "tensors": tensors}, sort_keys=True, separators=(",", ":")).encode()


def _digest(meta: dict, tensors: dict, arrays: dict[str, np.ndarray | memoryview]) -> str:
    h = hashlib.sha256(_canonical(meta, tensors))
    for name in sorted(tensors):
        h.update(memoryview(arrays[name]).cast("B"))
    return h.hexdigest()


def write(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray], info: dict | None = None) -> str:
    """Write a model file atomically; return its digest (hex)."""
    tensors: dict[str, list] = {}
    offset = 0
    contiguous = {}
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        if arr.dtype.name not in _DTYPES:
            raise ValueError(f"tensor {name}: dtype {arr.dtype} is not allowed in a model file")
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        contiguous[name] = arr
        tensors[name] = [arr.dtype.name, list(arr.shape), offset, arr.nbytes]
        offset += -(-arr.nbytes // _ALIGN) * _ALIGN
    digest = _digest(meta, tensors, contiguous)
    header = json.dumps(
        {"meta": meta, "info": info or {}, "tensors": tensors, "digest": digest}, sort_keys=True
    ).encode()
    start = -(-(16 + len(header)) // _ALIGN) * _ALIGN
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header)
            f.write(b"\0" * (start - 16 - len(header)))
            for name in sorted(contiguous):
                arr = contiguous[name]
                f.write(memoryview(arr).cast("B"))
                f.write(b"\0" * (-arr.nbytes % _ALIGN))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def read_header(path: str | os.PathLike) -> tuple[dict, dict, dict, str, int]:
    """``(meta, info, tensors, digest, data_start)`` from a model file's header, without reading the data."""
    with open(path, "rb") as f:
        head = f.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            raise ModelFileError("not an nzip model file (bad magic number)")
        length = int.from_bytes(head[8:], "little")
        if length > MAX_HEADER:
            raise ModelFileError("corrupt model file (header length)")
        raw = f.read(length)
    if len(raw) != length:
        raise ModelFileError("model file is truncated (in its header)")
    try:
        header = json.loads(raw)
        meta, info, tensors, digest = header["meta"], header.get("info", {}), header["tensors"], header["digest"]
        if not all(isinstance(x, dict) for x in (meta, info, tensors)) or not isinstance(digest, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ModelFileError("corrupt model file (header is not valid)") from None
    return meta, info, tensors, digest, -(-(16 + length) // _ALIGN) * _ALIGN


def read(path: str | os.PathLike, verify: bool = True) -> tuple[dict, dict[str, np.ndarray], str]:
    """``(meta, arrays, digest)``; the arrays are read-only views of a memory map.

    With ``verify`` the digest is recomputed over everything that determines
    the coded bits, and a mismatch raises :class:`ModelFileError`.
    """
    meta, _, tensors, digest, start = read_header(path)
    size = os.path.getsize(path)
    data = np.memmap(path, dtype=np.uint8, mode="r") if size > start else np.zeros(0, np.uint8)
    arrays: dict[str, np.ndarray] = {}
    for name, spec in tensors.items():
        try:
            dtype, shape, offset, nbytes = spec
            if dtype not in _DTYPES:
                raise ValueError
            dt = np.dtype(dtype).newbyteorder("<")
            shape = tuple(int(s) for s in shape)
            if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != nbytes or offset < 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ModelFileError(f"corrupt model file (tensor {name!r} is described wrongly)") from None
        lo = start + int(offset)
        if lo + nbytes > size:
            raise ModelFileError("model file is truncated (tensor data missing)")
        arrays[name] = data[lo : lo + nbytes].view(dt).reshape(shape)
    if verify and _digest(meta, tensors, arrays) != digest:
        raise ModelFileError("model file is corrupt (content does not match its digest)")
    return meta, arrays, digest
