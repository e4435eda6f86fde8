"""Writing every byte or raising: the one rule every output path follows.

``BufferedWriter.write`` may return a short count, and CPython's does when
the raw ``write(2)`` comes back short: measured here, writing 200,000 bytes
to ``sys.stdout.buffer`` on a 64 KiB tmpfs returned 65,536 and raised
nothing (a nearly full disk writes what fits; only the next call fails).
Code that ignores the count, as ``dst.write(out)`` does, loses the rest
silently and exits 0.  This is why ``nzip -c big > full/x.nz`` used to leave a
truncated archive: one large write at the end of the member came back short
and nothing was left to flush.  Every layer that writes user data goes
through :func:`write_all`, which retries the remainder (so the real errno
surfaces) and turns a write that makes no progress into an error.
"""

from __future__ import annotations

import errno
import os
from typing import IO, Any


class OutputError(OSError):
    """Writing, flushing or syncing an output failed; names the output."""

    def __init__(self, name: str, cause: OSError | None = None, message: str | None = None) -> None:
        code = cause.errno if cause is not None and cause.errno else errno.EIO
        text = message or (cause.strerror if cause is not None and cause.strerror else str(cause or "write failed"))
        super().__init__(code, text)
        self.output = name

    def __str__(self) -> str:
        return f"{self.output}: {self.strerror}"


def write_all(fp: IO[bytes], data: Any) -> None:
    """Write all of ``data`` to ``fp`` or raise ``OSError``.

    A ``write`` that returns fewer bytes is called again with the rest; one
    that returns 0 or ``None`` (a non-blocking file that would block) twice in
    a row is reported as a short write, never ignored.
    """
    view = memoryview(data).cast("B")
    stalls = 0
    while len(view):
        n = fp.write(view)
        if n is None or n <= 0:
            stalls += 1
            if stalls >= 2:
                raise OSError(errno.EIO, "short write: the output accepted no more data")
            continue
        stalls = 0
        if n >= len(view):
            return
        view = view[n:]


class CheckedOutput:
    """A binary output that writes completely, flushes, and names itself in every error.

    ``sync`` also calls ``fsync`` on outputs that are files, so that data
    which is the user's only copy is on the disk before an input is removed.
    """

    def __init__(self, fp: IO[bytes], name: str) -> None:
        self._fp = fp
        self.name = name

    def write(self, data: Any) -> int:
        try:
            write_all(self._fp, data)
        except OSError as exc:
            raise OutputError(self.name, exc) from None
        return len(memoryview(data).cast("B"))

    def flush(self) -> None:
        try:
            self._fp.flush()
        except OSError as exc:
            raise OutputError(self.name, exc) from None

    def sync(self) -> None:
        """Flush, then fsync where the output is a regular file."""
        self.flush()
        try:
            fd = self._fp.fileno()
        except (OSError, AttributeError, ValueError):
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):  # pipes and terminals cannot sync
                raise OutputError(self.name, exc) from None
