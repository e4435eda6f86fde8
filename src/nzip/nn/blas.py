"""Keep numpy's BLAS to one thread while nzip's own threads code a neural frame.

The network's matrix products are exact whatever the BLAS does, so this is
about speed only: nzip splits a frame's work over its own threads (``-T``),
and an OpenBLAS that also starts a thread per core for every small product
fights them for the same cores (measured here: ``-T 2`` 13% slower than
``-T 1`` with it, and ``-T 1`` using two cores).  OpenBLAS's thread count is
one setting for the whole process, so the first frame in sets it to one and
the last one out puts it back.  With another BLAS, or none found, nothing
changes.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NAMES = (  # (set, get) in numpy's own OpenBLAS build and in a plain one
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_lock = threading.Lock()
_users = 0
_saved = 0
_found: tuple | bool | None = False


def _candidates() -> Iterator[str]:
    """Paths of OpenBLAS libraries this process has loaded (Linux), or that ship with numpy."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in Path(path).name.lower():
                    yield path
    except OSError:
        pass
    import numpy

    root = Path(numpy.__file__).parent
    for folder in (root.parent / "numpy.libs", root / ".libs", root / ".dylibs"):
        yield from (str(p) for p in sorted(folder.glob("*openblas*")))


def _functions() -> tuple | None:
    """OpenBLAS's (set, get) thread-count functions, or None."""
    global _found
    if _found is False:
        _found = None
        if sys.platform != "win32":
            for path in _candidates():
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for set_name, get_name in _NAMES:
                    setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
                    if setter is not None and getter is not None:
                        setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                        _found = (setter, getter)
                        return _found
    return _found  # type: ignore[return-value]


@contextmanager
def one_thread() -> Iterator[None]:
    """Inside this block (on any thread), BLAS products use one thread."""
    global _users, _saved
    functions = _functions()
    if functions is None:
        yield
        return
    setter, getter = functions
    with _lock:
        if _users == 0:
            _saved = int(getter())
            setter(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                setter(max(1, _saved))
