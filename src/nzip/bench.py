"""Benchmark harness: nzip levels side by side with classical compressors.

``nzip bench [FILES]`` (or ``python -m nzip.bench``) prints, for each file,
bits per byte and compression / decompression speed of each nzip level and
of gzip -9, bzip2 -9, xz -9e, zstd -19, brotli 11 and PPMd (order 6), and
checks that every round trip returns the original bytes.  Baselines come from
the standard library or from the optional ``bench`` extra
(``pip install .[bench]``); one whose package is missing is skipped with a
note.  Speed targets live here, not in the test suite.
"""

from __future__ import annotations

import argparse
import bz2
import lzma
import os
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import codec


def _default_dir() -> Path:
    """``../shared/bench`` seen from the working directory or from a source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = (base / ".." / "shared" / "bench").resolve()
        if candidate.is_dir():
            return candidate
    return Path("../shared/bench")


DEFAULT_DIR = _default_dir()
Codec = tuple[Callable[[bytes], bytes], Callable[[bytes, int], bytes]]


@dataclass
class Result:
    name: str
    size: int
    packed: int
    comp_s: float
    decomp_s: float

    @property
    def bpb(self) -> float:
        return 8 * self.packed / self.size if self.size else 0.0


def _baselines() -> tuple[dict[str, Codec], list[str]]:
    codecs: dict[str, Codec] = {
        "gzip -9": (lambda d: zlib.compress(d, 9), lambda c, n: zlib.decompress(c)),
        "bzip2 -9": (lambda d: bz2.compress(d, 9), lambda c, n: bz2.decompress(c)),
        "xz -9e": (
            lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME),
            lambda c, n: lzma.decompress(c),
        ),
    }
    notes = []
    try:
        import zstandard

        codecs["zstd -19"] = (
            lambda d: zstandard.ZstdCompressor(level=19).compress(d),
            lambda c, n: zstandard.ZstdDecompressor().decompress(c, max_output_size=max(n, 1)),
        )
    except ImportError:
        notes.append("zstd -19 skipped: package 'zstandard' not installed")
    try:
        import brotli

        codecs["brotli 11"] = (lambda d: brotli.compress(d, quality=11), lambda c, n: brotli.decompress(c))
    except ImportError:
        notes.append("brotli 11 skipped: package 'brotli' not installed")
    try:
        import pyppmd

        def ppmd_c(d: bytes) -> bytes:
            enc = pyppmd.Ppmd7Encoder(6, 16 << 20)
            return enc.encode(d) + enc.flush()

        def ppmd_d(c: bytes, n: int) -> bytes:
            return pyppmd.Ppmd7Decoder(6, 16 << 20).decode(c, n)

        codecs["PPMd o6"] = (ppmd_c, ppmd_d)
    except ImportError:
        notes.append("PPMd o6 skipped: package 'pyppmd' not installed")
    return codecs, notes


def _nzip_codec(level: int, threads: int) -> Codec:
    return (
        lambda d: codec.compress(d, level, threads=threads),
        lambda c, n: codec.decompress(c, threads=threads),
    )


def measure(name: str, data: bytes, funcs: Codec, repeat: int = 1) -> Result:
    """Time one codec on ``data`` (best of ``repeat``) and check its round trip."""
    comp, decomp = funcs
    best_c = best_d = float("inf")
    packed = b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        packed = comp(data)
        t1 = time.perf_counter()
        out = decomp(packed, len(data))
        t2 = time.perf_counter()
        if out != data:
            raise AssertionError(f"{name}: round trip failed")
        best_c, best_d = min(best_c, t1 - t0), min(best_d, t2 - t1)
    return Result(name, len(data), len(packed), best_c, best_d)


def _mbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:.2f}" if seconds > 0 else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nzip bench", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help=f"files or directories (default: {DEFAULT_DIR})")
    p.add_argument("--levels", default="1,2,3", help="nzip levels to run, comma-separated (default 1,2,3)")
    p.add_argument("--threads", type=int, default=1, help="threads for nzip (default 1)")
    p.add_argument("--no-baselines", action="store_true", help="run nzip only")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best time counts")
    args = p.parse_args(argv)

    paths: list[Path] = []
    for f in args.files or [str(DEFAULT_DIR)]:
        path = Path(f)
        if path.is_dir():
            paths += sorted(q for q in path.iterdir() if q.is_file() and q.name != "README.md")
        elif path.is_file():
            paths.append(path)
        else:
            print(f"nzip bench: {f}: no such file or directory", file=sys.stderr)
            return 1
    levels = [int(x) for x in args.levels.split(",") if x]
    codecs = {f"nzip -{lv}": _nzip_codec(lv, args.threads) for lv in levels}
    # Compile the kernels before timing anything.
    codec.decompress(codec.compress(b"warm up the compiled kernels", levels[0]))
    notes: list[str] = []
    if not args.no_baselines:
        baselines, notes = _baselines()
        codecs.update(baselines)

    print(f"nzip bench: {len(paths)} files, {os.cpu_count()} cores, nzip threads {args.threads}")
    print("bits per byte (lower is better); compress / decompress MB/s\n")
    names = list(codecs)
    print("| file | bytes | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    totals: dict[str, list[float]] = {n: [0, 0, 0, 0] for n in names}
    speed_rows = []
    for path in paths:
        data = path.read_bytes()
        cells, speeds = [], []
        for name in names:
            r = measure(name, data, codecs[name], args.repeat)
            t = totals[name]
            t[0] += r.size
            t[1] += r.packed
            t[2] += r.comp_s
            t[3] += r.decomp_s
            cells.append(f"{r.bpb:.3f}")
            speeds.append(f"{_mbps(r.size, r.comp_s)} / {_mbps(r.size, r.decomp_s)}")
        print(f"| {path.name} | {len(data)} | " + " | ".join(cells) + " |", flush=True)
        speed_rows.append(f"| {path.name} | " + " | ".join(speeds) + " |")
    print(
        "| **all** | "
        + f"{int(totals[names[0]][0])} | "
        + " | ".join(f"{8 * t[1] / t[0]:.3f}" for t in totals.values())
        + " |"
    )
    print("\nspeed, MB/s (compress / decompress)\n")
    print("| file | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in speed_rows:
        print(row)
    print(
        "| **all** | "
        + " | ".join(f"{_mbps(int(t[0]), t[2])} / {_mbps(int(t[0]), t[3])}" for t in totals.values())
        + " |"
    )
    for note in notes:
        print(f"\nnote: {note}")
    print("\nall round trips verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
