"""Where the bits go: ``nzip explain FILE`` codes a file once and shows what every byte cost.

The model kernels can record, for each byte, the bits it cost and what it
would have cost under each of the model's inputs (the network, the match
model) and without each group of inputs (:mod:`nzip.models.trace_kernel`).
This module cuts the file into frames exactly as compression does, collects
those traces, and summarises them: totals per input, the costliest regions,
a profile along the whole file.  :mod:`nzip.explain_page` turns a report
into one self-contained HTML page.

The per-byte costs add up to the payloads the archive would hold: each
frame's sum is its payload to within the coder's termination (it ends with
one byte of its 32-bit interval: from 24 bits less to 8 bits more than the
sum) and the payload's own header byte (the lane count of the neural
models).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import container as fmt
from .errors import NzipError
from .models import DEFAULT_LEVEL, Model, model_for_level, named_model
from .models import trace_kernel as tk

#: Bytes shown one by one on the page; the profile and the regions cover the whole file.
VIEW_LIMIT = 256 << 10
#: Width of a region in the list of costliest regions, in bytes.
REGION = 64


@dataclass
class Report:
    """One file coded by one model: per-byte costs and per-frame facts."""

    name: str
    data: bytes
    model: Model
    level: int | None
    costs: np.ndarray  # (bytes, tk.FIELDS), bits
    frames: list[tuple[int, int, int, str]] = field(default_factory=list)  # start, size, payload, coded by

    @property
    def payload(self) -> int:
        """Bytes of payload the archive holds: each frame modelled, or stored when that is smaller."""
        return sum(min(payload, size) for _, size, payload, _ in self.frames)

    @property
    def total_bits(self) -> float:
        return float(self.costs[:, tk.FINAL].sum())

    def column(self, name: str) -> np.ndarray:
        return self.costs[:, tk.NAMES.index(name)]


class ExplainError(Exception):
    """A one-line reason why no report can be made."""


def explain(name: str, data: bytes, model: Model, level: int | None = None, frame_size: int | None = None) -> Report:
    """Code ``data`` frame by frame with ``model``, recording every byte's cost."""
    frame = frame_size or 1 << fmt.DEFAULT_FRAME_LOG
    report = Report(name, data, model, level, np.zeros((len(data), tk.FIELDS)))
    for start in range(0, len(data), frame):
        piece = data[start : start + frame]
        traced = model.trace(piece)
        if traced is None:
            raise ExplainError(f"model '{model.name}' cannot tell where its bits go (no per-byte trace)")
        report.costs[start : start + len(piece)] = traced.costs
        report.frames.append((start, len(piece), traced.payload, traced.coded_by))
    return report


def costliest(costs: np.ndarray, width: int = REGION, count: int = 12) -> list[tuple[int, float]]:
    """Up to ``count`` non-overlapping ``width``-byte windows with the most bits: (start, bits), costliest first."""
    if len(costs) == 0:
        return []
    width = min(width, len(costs))
    sums = np.convolve(costs, np.ones(width), mode="valid")
    taken = np.zeros(len(sums), dtype=bool)
    out: list[tuple[int, float]] = []
    for start in np.argsort(-sums, kind="stable"):
        if len(out) == count:
            break
        if taken[start]:
            continue
        out.append((int(start), float(sums[start])))
        taken[max(0, start - width + 1) : start + width] = True
    return out


def profile(costs: np.ndarray, bins: int = 1000) -> list[float]:
    """Mean bits per byte in ``bins`` equal stretches along the file (fewer for short files)."""
    if len(costs) == 0:
        return []
    edges = np.linspace(0, len(costs), min(bins, len(costs)) + 1).astype(np.int64)
    sums = np.add.reduceat(costs, edges[:-1])
    return [round(float(s / (b - a)), 3) for s, a, b in zip(sums, edges[:-1], edges[1:], strict=True)]


def inputs_summary(report: Report) -> list[tuple[str, str, str]]:
    """Rows of (input, its own cost where it predicted, what the mixer gained from it), for the page."""
    n = max(1, len(report.data))
    rows = []
    network = report.column("network")
    if not np.isnan(network).all():
        saved = np.nansum(report.column("saved_network")) / 8
        rows.append(("network", f"{np.nansum(network) / n:.3f} bits/byte", f"{saved:,.0f} bytes"))
    predicted = report.column("match_bits")
    if predicted.sum():
        own = report.column("match").sum() / predicted.sum()
        share = predicted.sum() / (8 * n)
        rows.append(
            (
                "match model",
                f"{own:.3f} bits per predicted bit ({100 * share:.1f}% of bits)",
                f"{report.column('saved_match').sum() / 8:,.0f} bytes",
            )
        )
    rows.append(("contexts", "-", f"{report.column('saved_contexts').sum() / 8:,.0f} bytes"))
    sse = (report.column("mixer").sum() - report.total_bits) / 8
    rows.append(("probability maps (SSE)", "-", f"{sse:,.0f} bytes"))
    return rows


def _model(level: int | None, model: str | None) -> tuple[Model, int | None]:
    if model is not None:
        return named_model(model), None
    level = DEFAULT_LEVEL if level is None else level
    return model_for_level(level), level


def _pick(text: str) -> tuple[Model, int | None]:
    """``--diff`` names a level (a number) or a model."""
    return _model(int(text), None) if text.isdigit() else _model(None, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="nzip explain",
        description="Code FILE once and write an HTML page showing what every byte cost, and why.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="HTML", help="the page to write (default FILE.html)")
    p.add_argument("-l", "--level", type=int, help=f"the level to explain, 1-9 (default {DEFAULT_LEVEL})")
    p.add_argument("-m", "--model", metavar="NAME", help="a model by name instead of a level (e.g. cm3, nn3)")
    p.add_argument("--diff", metavar="LEVEL|MODEL", help="compare byte by byte with another level or model")
    p.add_argument("--frame-size", type=int, help="frame size in bytes, as for compression")
    p.add_argument("-f", "--force", action="store_true", help="overwrite the page if it exists")
    args = p.parse_args(argv)
    from .explain_page import render

    out = Path(args.output or f"{args.file}.html")
    try:
        if out.exists() and not args.force:
            raise ExplainError(f"{out} already exists; use -f to overwrite")
        if args.level is not None and args.model is not None:
            raise ExplainError("give --level or --model, not both")
        if args.level is not None and not 1 <= args.level <= 9:
            raise ExplainError(f"level must be between 1 and 9, not {args.level}")
        data = Path(args.file).read_bytes()
        model, level = _model(args.level, args.model)
        report = explain(Path(args.file).name, data, model, level, args.frame_size)
        other = None
        if args.diff:
            model_b, level_b = _pick(args.diff)
            other = explain(Path(args.file).name, data, model_b, level_b, args.frame_size)
        page = render(report, other)
        partial = out.with_name(f".{out.name}.partial")  # renamed into place: never half a page
        try:
            partial.write_text(page, encoding="utf-8")
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    except (ExplainError, NzipError, OSError, ValueError, LookupError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        print(f"nzip explain: {where}{reason}", file=sys.stderr)
        return 1
    n = max(1, len(data))
    bpb = 8 * report.payload / n
    line = f"{args.file}: {report.model.name}, {report.payload:,} bytes of payload, {bpb:.3f} bits/byte"
    if other is not None:
        line += f"; {other.model.name}: {other.payload:,} bytes, {8 * other.payload / n:.3f} bits/byte"
    print(f"{line}; wrote {out}", file=sys.stderr)
    return 0
