"""Salvage of long frames: keep what a frame vouches for, report what it copied from lost output.

A long frame's payload carries its own CRC over the match list and the
residual (docs/FORMAT.md), so when an earlier frame was lost, the long
frames that copy from it still prove everything but the copied bytes.
:class:`LongOutput` follows a long member's output during salvage (lost
frames as zeros, and where they lie) and :func:`salvage_long_frame` rebuilds
one frame from it.
"""

from __future__ import annotations

from . import container as fmt
from .matches import RESIDUAL_STORED, Window, check_sources, lost_ranges, parse_payload, rebuild
from .models import Model


class LongOutput:
    """A long member's output so far: the window later frames copy from, and which of it was lost."""

    def __init__(self, window: int, frame_size: int) -> None:
        self.window = Window(window)
        self.frame_size = frame_size
        self.lost: list[tuple[int, int]] = []  # member ranges [a, b) written as zeros
        # False once a lost frame's size was guessed (its header was damaged, and the walk may have
        # skipped more than one frame): member offsets after it are then not certain.
        self.certain = True

    def good(self, raw: bytes) -> None:
        self.window.append(raw)

    def bad(self, size: int | None) -> None:
        if size is None:
            self.certain = False
        size = size or self.frame_size  # every frame but the last is full
        self.lost.append((self.window.end, self.window.end + size))
        self.window.append(bytes(size))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def salvage_long_frame(
    model: Model, head: fmt.FrameHeader, payload: bytes, where: tuple[int, int], member: LongOutput
) -> tuple[bytes, list[tuple[int, int]]] | None:
    """A long frame's bytes and the member ranges in it copied from lost output; None if the frame is damaged."""
    index, at = where
    text = f"frame {index} at offset {at}"
    try:
        parsed = parse_payload(payload, head.raw_size, text)
        residual = parsed.body
        if parsed.residual_kind != RESIDUAL_STORED:
            residual = model.decode(parsed.body, parsed.residual_size)
        if not parsed.verify(residual):
            return None
        check_sources(parsed.matches, member.window.end, member.window.size, text)
    except Exception:  # a damaged payload may upset a model in any way
        return None
    start = member.window.end
    raw = rebuild(member.window, parsed.matches, residual)
    hurt = _merged(lost_ranges(parsed.matches, start, member.lost))
    if fmt.crc32(raw) != head.raw_crc and (not hurt or not member.certain):
        return None  # damaged; or copies from lost output at offsets that cannot be trusted
    member.lost.extend(hurt)
    member.window.append(raw)
    return raw, hurt
