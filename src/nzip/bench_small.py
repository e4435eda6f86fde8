"""Small inputs as records: one archive per slice (``nzip bench --small FILES``).

A shipped model is a prior every archive shares for free, so it should win
most on short messages and records, where adaptive compressors know
nothing yet.  This cuts slices of 256 bytes, 1 KiB and 4 KiB from the
held-out end of each file (its last 1.5%: the part of a corpus shard that
training never reads), compresses every slice on its own, and prints per
size the total compressed bytes of each codec (total bytes over total
bytes), and the records per second of each nzip level in this process:
kernels compiled, models loaded, so without start-up.  Every round trip is
checked.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import codec
from .bench import Codec, _baselines, _nzip_codec
from .models import DEFAULT_LEVEL

SIZES = (256, 1024, 4096)
#: As ``nzip.nn.train``'s ``val_fraction``: the held-out tail of every corpus shard.
HELD_OUT = 0.015
#: Codecs the default level must beat in total at every size.
RIVALS = ("brotli 11", "zstd -19")


def held_out(data: bytes) -> bytes:
    """The last ``HELD_OUT`` of ``data``, cut where training cuts a shard."""
    return data[len(data) - int(len(data) * HELD_OUT) :]


def slices(data: bytes, size: int, count: int) -> list[bytes]:
    """Up to ``count`` non-overlapping ``size``-byte slices spread evenly over the held-out tail."""
    tail = held_out(data)
    n = min(count, len(tail) // size)
    if n == 0:
        return []
    step = len(tail) // n
    return [tail[i * step : i * step + size] for i in range(n)]


def _run(name: str, funcs: Codec, records: list[bytes]) -> tuple[int, float, float]:
    """(total compressed bytes, compress seconds, decompress seconds) of ``records`` one by one."""
    comp, decomp = funcs
    t0 = time.perf_counter()
    packed = [comp(r) for r in records]
    t1 = time.perf_counter()
    for record, blob in zip(records, packed, strict=True):
        if decomp(blob, len(record)) != record:
            raise SystemExit(f"nzip bench: {name}: round trip gave different bytes")
    return sum(map(len, packed)), t1 - t0, time.perf_counter() - t1


def run(paths: list[Path], levels: list[int], count: int, threads: int, baselines: bool) -> int:
    codecs = {f"nzip -{lv}": _nzip_codec(lv, threads) for lv in levels}
    for level in levels:
        codec.decompress(codec.compress(b"warm up the compiled kernels" * 10, level))
    notes: list[str] = []
    if baselines:
        extra, notes = _baselines()
        codecs.update(extra)
    names = list(codecs)
    print(f"nzip bench --small: {len(paths)} files, up to {count} slices per size from each file's last 1.5%")
    print("total compressed bytes of the slices, each compressed on its own (fewer is better)\n")
    print("| size | file | slices | bytes | " + " | ".join(names) + " |")
    print("|---:|---|---:|---:|" + "---:|" * len(names))
    verdicts, speeds = [], []
    for size in SIZES:
        totals = dict.fromkeys(names, 0)
        raw = 0
        times = {n: [0.0, 0.0, 0] for n in names if n.startswith("nzip ")}
        for path in paths:
            records = slices(path.read_bytes(), size, count)
            if not records:
                continue
            raw += size * len(records)
            cells = []
            for name in names:
                packed, comp_s, decomp_s = _run(name, codecs[name], records)
                totals[name] += packed
                cells.append(str(packed))
                if name in times:
                    times[name][0] += comp_s
                    times[name][1] += decomp_s
                    times[name][2] += len(records)
            print(f"| {size} | {path.name} | {len(records)} | {size * len(records)} | " + " | ".join(cells) + " |")
        if not raw:
            continue
        cells = [f"{totals[n]} ({8 * totals[n] / raw:.2f})" for n in names]
        print(f"| {size} | **all** (bits/byte) | | {raw} | " + " | ".join(cells) + " |", flush=True)
        for name, (comp_s, decomp_s, n) in times.items():
            speeds.append(f"| {size} | {name} | {n / comp_s:.0f} | {n / decomp_s:.0f} |")
        default = f"nzip -{DEFAULT_LEVEL}"
        rivals = [r for r in RIVALS if r in totals]
        if default in totals and rivals:
            beaten = all(totals[default] < totals[r] for r in rivals)
            against = ", ".join(f"{r} {totals[r]}" for r in rivals)
            verdicts.append(
                f"{size} bytes: {default} {totals[default]} against {against}: {'met' if beaten else 'NOT met'}"
            )
    print("\nrecords per second, in this process (no start-up)\n")
    print("| size | level | compress | decompress |")
    print("|---:|---|---:|---:|")
    for row in speeds:
        print(row)
    if verdicts:
        print(f"\ntarget: the default level smaller in total than {' and '.join(RIVALS)} at every size\n")
        for line in verdicts:
            print(f"- {line}")
    for note in notes:
        print(f"\nnote: {note}")
    return 0
