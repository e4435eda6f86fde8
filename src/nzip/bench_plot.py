"""The benchmark as a picture: bits per byte against compression speed, one point per codec.

``nzip bench --plot FILE.png`` (or ``.svg``) draws what the tables say: each
codec's total over the files (total compressed bits over total input bytes,
total input bytes over total compression time), speed on a log scale because
the codecs span four orders of magnitude, and with ``--plot-files`` a faint
point per file as well.  matplotlib is an optional extra (``nzip[plot]``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

FORMATS = (".png", ".svg")
_NZIP_COLOUR = "#c0392b"
_OTHER_COLOUR = "#2c3e50"


class Measured(Protocol):
    """What the plot needs of a benchmark result (:class:`nzip.bench.Result`)."""

    size: int
    packed: int
    comp_s: float


def check_available(path: Path) -> str | None:
    """Why ``path`` cannot be plotted (unknown format, no matplotlib), or None."""
    if path.suffix.lower() not in FORMATS:
        return f"--plot: {path.name}: the plot is written as PNG or SVG (.png or .svg)"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: pip install 'nzip[plot]'"
    return None


def totals(results: Mapping[str, Mapping[str, Measured]]) -> dict[str, tuple[float, float]]:
    """Per codec: (bits per byte, compression MB/s) over every file it coded."""
    sums: dict[str, list[float]] = {}
    for per_codec in results.values():
        for codec, r in per_codec.items():
            s = sums.setdefault(codec, [0, 0, 0.0])
            s[0] += r.size
            s[1] += r.packed
            s[2] += r.comp_s
    return {c: (8 * packed / size, size / max(secs, 1e-9) / 1e6) for c, (size, packed, secs) in sums.items() if size}


def plot(results: Mapping[str, Mapping[str, Measured]], path: Path, per_file: bool = False, title: str = "") -> None:
    """Draw ``results`` (file -> codec -> result) into ``path`` (.png or .svg)."""
    problem = check_available(path)
    if problem:
        raise ValueError(problem)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    if per_file:
        for per_codec in results.values():
            for codec, r in per_codec.items():
                colour = _NZIP_COLOUR if codec.startswith("nzip") else _OTHER_COLOUR
                ax.scatter(r.size / max(r.comp_s, 1e-9) / 1e6, 8 * r.packed / r.size, s=9, color=colour, alpha=0.25)
    points = totals(results)
    for codec, (bpb, speed) in points.items():
        colour = _NZIP_COLOUR if codec.startswith("nzip") else _OTHER_COLOUR
        ax.scatter(speed, bpb, s=48, color=colour, zorder=3)
        # A point with a neighbour just to its right (in log speed and in bits) is labelled on its left.
        crowded = any(0 < math.log10(s / speed) < 0.3 and abs(bpb - b) < 0.05 for b, s in points.values())
        offset, align = ((-6, 4), "right") if crowded else ((6, 4), "left")
        ax.annotate(codec, (speed, bpb), textcoords="offset points", xytext=offset, ha=align, fontsize=9, color=colour)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("compression speed, MB/s (log scale; all files together)")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title(title or f"nzip bench: {len(results)} file{'s' * (len(results) != 1)}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial{path.suffix}")  # renamed into place: never half a plot
    try:
        fig.savefig(partial)
        os.replace(partial, path)
    finally:
        plt.close(fig)
        partial.unlink(missing_ok=True)
