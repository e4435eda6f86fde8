"""Whole-process timings for ``nzip bench --whole-process``: nzip as users run it.

In-process figures leave out what every command pays before its first
byte: starting Python, importing numpy and numba, loading compiled kernels
and model weights.  Here each measurement is a fresh ``python -m nzip``
process reading standard input and writing standard output, timed from
start to exit, so the table shows what a shell user waits for.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def process_seconds(argv: list[str], stdin: bytes, repeat: int = 1) -> tuple[float, bytes]:
    """Best wall time of ``nzip ARGV`` over ``repeat`` runs with ``stdin``, and its output."""
    best, out = float("inf"), b""
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nzip", *argv], input=stdin, capture_output=True, check=True)
        best, out = min(best, time.perf_counter() - start), done.stdout
    return best, out


def print_table(paths: list[Path], levels: list[int], threads: int, repeat: int) -> None:
    """One row per file: KB/s compressing and decompressing, whole process, at each level; verified."""
    print("\nspeed, KB/s (compress / decompress), whole nzip processes (start-up included)\n")
    names = [f"nzip -{lv}" for lv in levels]
    print("| file | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    totals = {lv: [0, 0.0, 0.0] for lv in levels}
    for path in paths:
        data = path.read_bytes()
        cells = []
        for lv in levels:
            c_s, blob = process_seconds([f"-{lv}", "-T", str(threads), "-c", "-q"], data, repeat)
            d_s, back = process_seconds(["-d", "-T", str(threads), "-c", "-q"], blob, repeat)
            if back != data:
                raise RuntimeError(f"{path.name}: nzip -{lv} round trip through the CLI failed")
            t = totals[lv]
            t[0], t[1], t[2] = t[0] + len(data), t[1] + c_s, t[2] + d_s
            cells.append(f"{len(data) / c_s / 1e3:.1f} / {len(data) / d_s / 1e3:.1f}")
        print(f"| {path.name} | " + " | ".join(cells) + " |", flush=True)
    print("| **all** | " + " | ".join(f"{n / c / 1e3:.1f} / {n / d / 1e3:.1f}" for n, c, d in totals.values()) + " |")
