"""Which files a command line names: its operands, and with ``-r`` the files under directories.

As gzip's ``-r``: a directory operand stands for every regular file below
it, in sorted order; symbolic links met on the way are skipped, never
followed (no loops, nothing outside the tree); compressing skips files that
already carry the archive suffix, and decompressing, testing and listing
take only those.  Operands themselves are kept as given: a named file is
always processed, and errors about it are reported by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator


def operands(
    paths: list[str], recursive: bool, wants_archives: bool, suffix: str, skip: Callable[[str, str], None]
) -> Iterator[str]:
    """The files to process, in order.

    ``wants_archives``: decompressing, testing or listing (take only files
    ending in ``suffix``); otherwise compressing (leave those alone).
    ``skip(path, reason)`` hears of every file passed over inside a
    directory.
    """
    for path in paths:
        if recursive and path != "-" and os.path.isdir(path) and not os.path.islink(path):
            yield from _walk(path, wants_archives, suffix, skip)
        else:
            yield path


def _walk(top: str, wants_archives: bool, suffix: str, skip: Callable[[str, str], None]) -> Iterator[str]:
    def fail(exc: OSError) -> None:
        skip(exc.filename or top, exc.strerror or str(exc))

    for directory, subdirs, files in os.walk(top, onerror=fail):
        subdirs.sort()
        for name in [d for d in subdirs if os.path.islink(os.path.join(directory, d))]:
            subdirs.remove(name)
            skip(os.path.join(directory, name), "symbolic link; not followed")
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.islink(path):
                skip(path, "symbolic link; ignored")
            elif not os.path.isfile(path):
                skip(path, "not a regular file; ignored")
            elif name.endswith(suffix) != wants_archives:
                if not wants_archives:
                    skip(path, f"already has the {suffix} suffix; unchanged")
            else:
                yield path
