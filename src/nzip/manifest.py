"""A record of what a job wrote, so that a rerun skips what is done (``--manifest FILE``).

One JSON object per line, appended and fsynced after each output is in
place: the input (path, size, modification time), the output (path, size,
SHA-256), and how it was made.  A rerun with the same manifest skips an
input whose entry still matches: the input unchanged, the output present
with the recorded size and SHA-256.  An interrupted job therefore resumes
where it stopped (outputs are atomic, so an interrupted one never exists),
and a line cut short by a crash is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import IO, Any


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        while block := fp.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The entries of a manifest file, opened for appending new ones."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fp:
                for line in fp:
                    try:
                        entry = json.loads(line)
                        self._entries[entry["input"]] = entry
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash, or not ours
        self._fp: IO[str] = open(path, "a", encoding="utf-8")  # closed by close()

    def close(self) -> None:
        self._fp.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self, source: str, output: str) -> bool:
        """Whether ``source`` was already written to ``output`` and both are as recorded."""
        entry = self._entries.get(os.path.abspath(source))
        if entry is None or entry.get("output") != os.path.abspath(output):
            return False
        try:
            src, out = os.stat(source), os.stat(output)
        except OSError:
            return False
        if (src.st_size, src.st_mtime_ns) != (entry.get("input_size"), entry.get("input_mtime_ns")):
            return False
        return out.st_size == entry.get("output_size") and _sha256(output) == entry.get("output_sha256")

    def record(self, source: str, output: str, **how: Any) -> None:
        """Add an entry for an output that is complete and in place (``how``: mode, level, model...)."""
        src = os.stat(source)
        entry = {
            "input": os.path.abspath(source),
            "input_size": src.st_size,
            "input_mtime_ns": src.st_mtime_ns,
            "output": os.path.abspath(output),
            "output_size": os.stat(output).st_size,
            "output_sha256": _sha256(output),
            **how,
        }
        self._entries[entry["input"]] = entry
        self._fp.write(json.dumps(entry, sort_keys=True) + "\n")
        self._fp.flush()
        os.fsync(self._fp.fileno())
