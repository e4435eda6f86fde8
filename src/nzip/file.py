"""File objects for nzip archives: :class:`NzipFile` and :func:`open`.

They behave like :class:`lzma.LZMAFile` and :func:`lzma.open`: binary file
objects that compress on write and decompress on read, wrapping either a
path or an existing binary file object, plus a text mode through
:class:`io.TextIOWrapper`.
"""

from __future__ import annotations

import builtins
import io
import os
from typing import IO, Any

from ._write import write_all
from .codec import Compressor, Decompressor
from .container import DEFAULT_WINDOW_LOG
from .frames import FrameCluster
from .models import DEFAULT_LEVEL, Model

_READ_CHUNK = 1 << 16
_MODES = {"r": "rb", "rb": "rb", "w": "wb", "wb": "wb", "a": "ab", "ab": "ab", "x": "xb", "xb": "xb"}


class _DecompressingReader(io.RawIOBase):
    """A raw, read-only stream of the decompressed bytes of ``fp``."""

    def __init__(self, fp: IO[bytes], threads: int, cluster: FrameCluster | None = None) -> None:
        self._fp = fp
        self._threads = threads
        self._cluster = cluster
        self._start = fp.tell() if fp.seekable() else None
        self._reset()

    def _reset(self) -> None:
        self._decompressor = Decompressor(threads=self._threads, cluster=self._cluster)
        self._decompressor.wait_for_batches(self._threads > 1 or self._cluster is not None)
        self._pending = b""
        self._pending_pos = 0
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._start is not None

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while self._pending_pos >= len(self._pending):
            if self._eof:
                return 0
            if self._decompressor.needs_input:
                chunk = self._fp.read(_READ_CHUNK)
                if not chunk and self._decompressor.waits_for_batches:
                    self._decompressor.wait_for_batches(False)  # the input has ended: decode what is left
                elif not chunk:
                    self._decompressor.finish()
                    self._eof = True
                    return 0
            else:
                chunk = b""
            self._pending = self._decompressor.decompress(chunk, _READ_CHUNK)
            self._pending_pos = 0
        n = min(len(view), len(self._pending) - self._pending_pos)
        view[:n] = self._pending[self._pending_pos : self._pending_pos + n]
        self._pending_pos += n
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Emulated: forward by decoding and discarding, backward by starting over."""
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            while self.read(_READ_CHUNK):
                pass
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise ValueError(f"invalid whence: {whence}")
        if offset < 0:
            raise ValueError("negative seek position")
        if offset < self._pos:
            if self._start is None:
                raise io.UnsupportedOperation("underlying file is not seekable")
            self._fp.seek(self._start)
            self._reset()
        while self._pos < offset:
            if not self.read(min(_READ_CHUNK, offset - self._pos)):
                break
        return self._pos


class NzipFile(io.BufferedIOBase):
    """A binary file object reading or writing an nzip archive.

    ``filename`` is a path or an existing binary file object.  ``mode`` is
    ``"r"``, ``"w"``, ``"a"`` or ``"x"`` (optionally with ``"b"``): appending
    adds a new member, which decompresses as a continuation of the file.
    """

    def __init__(
        self,
        filename: str | bytes | os.PathLike | IO[bytes],
        mode: str = "r",
        *,
        level: int = DEFAULT_LEVEL,
        threads: int = 1,
        frame_size: int | None = None,
        model: Model | str | None = None,
        long_window_log: int | None = DEFAULT_WINDOW_LOG,
        cluster: FrameCluster | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"invalid mode: {mode!r}")
        self._mode = _MODES[mode]
        self._owns_fp = isinstance(filename, (str, bytes, os.PathLike))
        if self._owns_fp:
            self._fp: IO[bytes] = builtins.open(filename, self._mode)  # type: ignore[arg-type]
        elif hasattr(filename, "read") or hasattr(filename, "write"):
            self._fp = filename  # type: ignore[assignment]
        else:
            raise TypeError("filename must be a str, bytes or os.PathLike object, or a file object")
        self.name = getattr(self._fp, "name", "") if self._owns_fp else getattr(filename, "name", "")
        self._compressor: Compressor | None = None
        self._reader: io.BufferedReader | None = None
        self._pos = 0
        try:
            if self._mode == "rb":
                self._reader = io.BufferedReader(_DecompressingReader(self._fp, threads, cluster))
            else:
                self._compressor = Compressor(
                    level,
                    threads=threads,
                    frame_size=frame_size,
                    model=model,
                    long_window_log=long_window_log,
                    cluster=cluster,
                )
        except BaseException:
            if self._owns_fp:
                self._fp.close()
            raise

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def closed(self) -> bool:
        return self._fp is None

    def _check_open(self) -> None:
        if self._fp is None:
            raise ValueError("I/O operation on closed file")

    def readable(self) -> bool:
        self._check_open()
        return self._reader is not None

    def writable(self) -> bool:
        self._check_open()
        return self._compressor is not None

    def seekable(self) -> bool:
        return self.readable() and self._reader is not None and self._reader.seekable()

    def fileno(self) -> int:
        self._check_open()
        return self._fp.fileno()

    def _need_reader(self) -> io.BufferedReader:
        self._check_open()
        if self._reader is None:
            raise io.UnsupportedOperation("file not open for reading")
        return self._reader

    def read(self, size: int | None = -1) -> bytes:
        return self._need_reader().read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._need_reader().read1(size if size >= 0 else _READ_CHUNK)

    def readinto(self, b: Any) -> int:
        return self._need_reader().readinto(b)

    def readline(self, size: int | None = -1) -> bytes:
        return self._need_reader().readline(-1 if size is None else size)

    def peek(self, size: int = 0) -> bytes:
        return self._need_reader().peek(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._need_reader().seek(offset, whence)

    def tell(self) -> int:
        self._check_open()
        if self._reader is not None:
            return self._reader.tell()
        return self._pos

    def write(self, data: Any) -> int:
        self._check_open()
        if self._compressor is None:
            raise io.UnsupportedOperation("file not open for writing")
        view = memoryview(data).cast("B")
        out = self._compressor.compress(view)
        if out:
            write_all(self._fp, out)
        self._pos += len(view)
        return len(view)

    def close(self) -> None:
        if self._fp is None:
            return
        try:
            if self._compressor is not None:
                write_all(self._fp, self._compressor.flush())
                self._compressor = None
            elif self._reader is not None:
                self._reader.close()
        finally:
            try:
                if self._owns_fp:
                    self._fp.close()
            finally:
                self._fp = None  # type: ignore[assignment]


def open(  # noqa: A001 - mirrors gzip.open and lzma.open
    filename: str | bytes | os.PathLike | IO[bytes],
    mode: str = "rb",
    *,
    level: int = DEFAULT_LEVEL,
    threads: int = 1,
    model: Model | str | None = None,
    long_window_log: int | None = DEFAULT_WINDOW_LOG,
    cluster: FrameCluster | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> NzipFile | io.TextIOWrapper:
    """Open an nzip archive in binary (``"rb"``, ``"wb"``, ...) or text (``"rt"``, ...) mode.

    ``model`` (writing only) names a stored language model or passes a
    :class:`~nzip.models.base.Model`; it replaces ``level``'s model.
    ``long_window_log`` (writing) is how far long matches reach (None: none),
    and ``cluster`` (:class:`nzip.cluster.RayCluster`) codes the frames there.
    """
    options = {"level": level, "threads": threads, "model": model, "long_window_log": long_window_log}
    if "t" in mode:
        if "b" in mode:
            raise ValueError(f"invalid mode: {mode!r}")
        binary = NzipFile(filename, mode.replace("t", ""), **options, cluster=cluster)
        return io.TextIOWrapper(binary, encoding, errors, newline)
    if encoding is not None or errors is not None or newline is not None:
        raise ValueError("encoding, errors and newline are for text mode only")
    return NzipFile(filename, mode, **options, cluster=cluster)
