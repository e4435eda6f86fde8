"""Many small files on a cluster: each one a task, a few ahead of the one being written.

A file that fits in one frame is one task whatever the path, so ``-r`` over
a directory of small files would keep one worker busy.  :class:`AheadFiles`
reads the next small files and sends each to the cluster as a whole-file
task (``nzip.codec.compress`` in the worker: the same archive as here),
while the command line writes the outputs in order, atomically, as before.
At most ``cluster.frames_at_once`` files are in flight.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..models import Model
from .ray_cluster import RayCluster


class AheadFiles:
    """Whole-file compression tasks for ``paths`` that ``wanted`` accepts, started in order ahead of use."""

    def __init__(
        self,
        cluster: RayCluster,
        paths: list[str],
        wanted: Callable[[str], bool],
        level: int,
        model: Model | None,
        **options: Any,
    ) -> None:
        self._cluster = cluster
        self._queue = [p for p in paths if wanted(p)]
        self._next = 0
        self._running: dict[str, Any] = {}
        self._job = (level, model, options)
        self._fill()

    def _fill(self) -> None:
        while len(self._running) < self._cluster.frames_at_once and self._next < len(self._queue):
            path = self._queue[self._next]
            self._next += 1
            try:
                with open(path, "rb") as fp:
                    data = fp.read()
            except OSError:
                continue  # the command line meets it again and reports it
            level, model, options = self._job
            self._running[path] = self._cluster.submit_file(data, level, model, **options)

    def take(self, path: str) -> bytes | None:
        """The archive of ``path`` if it was sent ahead (None: compress it the usual way)."""
        ref = self._running.pop(path, None)
        if ref is not None and path in self._queue:  # earlier ones were skipped by the caller: forget them
            for earlier in self._queue[: self._queue.index(path)]:
                self._running.pop(earlier, None)
        self._fill()
        return None if ref is None else self._cluster.result(ref, path)


def small_file(frame_size: int) -> Callable[[str], bool]:
    """Whether a path is a regular file of at most one frame."""

    def check(path: str) -> bool:
        try:
            return path != "-" and os.path.isfile(path) and os.path.getsize(path) <= frame_size
        except OSError:
            return False

    return check
