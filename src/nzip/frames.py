"""One frame: coding it, decoding it, and where frames are coded.

:func:`encode_frame` and :func:`decode_frame` are the whole of what happens
to a frame apart from its neighbours, as plain functions of a model and
bytes, so that threads here (:class:`nzip.codec.Compressor`) or tasks on a
cluster (:mod:`nzip.cluster`) can run them and produce the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from . import container as fmt
from . import matches as longfmt
from .errors import CorruptDataError
from .models import Model


def frames_at_once(threads: int, frame_memory: int) -> int:
    """How many frames ``threads`` threads code at once: one per thread, but within a quarter of memory.

    Threads left over work inside the frames (the neural levels split a
    frame's steps), so a large ``-T`` on a small machine costs no memory.
    """
    try:
        budget = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, OSError, ValueError):
        return threads
    return max(1, min(threads, budget // max(1, frame_memory)))


def map_frames(executor: ThreadPoolExecutor | None, func: Callable, items: list) -> list:
    if executor is None or len(items) < 2:
        return [func(item) for item in items]
    return list(executor.map(func, items))


FrameItem = tuple[fmt.FrameHeader, bytes, int, int]  # header, payload, index, archive offset


class FrameCluster(Protocol):
    """Somewhere else to code frames (``nzip.cluster.RayCluster``): same bytes as local threads."""

    frames_at_once: int

    def encode(self, model: Model, items: list[tuple], first: int) -> list[bytes]:
        """:func:`encode_frame` of every (raw, matches, residual), frames numbered from ``first``."""
        ...

    def decode(self, model: Model, items: list[FrameItem]) -> list:
        """:func:`decode_frame` of every frame, in order."""
        ...


def encode_frame(model: Model, raw: bytes, threads: int = 1, matches=(), residual: bytes = b"") -> bytes:
    """One frame, header and payload: modelled, stored, or (with ``matches``) long with its residual coded."""
    if len(matches):
        coded = model.encode(residual, threads) if residual else None
        if coded is not None and len(coded) >= len(residual):
            coded = None
        kind, payload = fmt.FRAME_LONG, longfmt.pack_payload(matches, residual, coded)
    else:
        kind, payload = fmt.FRAME_MODELLED, model.encode(raw, threads)
    if payload is None or len(payload) >= len(raw):
        kind, payload = fmt.FRAME_STORED, raw
    head = fmt.FrameHeader(kind, len(raw), len(payload), fmt.crc32(raw))
    return head.pack() + payload


def decode_frame(model: Model, item: FrameItem, threads: int = 1) -> bytes | tuple[longfmt.LongPayload, bytes]:
    """A frame's bytes; for a long frame, its parsed payload and residual (matches not yet applied)."""
    head, payload, index, offset = item
    if head.kind == fmt.FRAME_LONG:
        where = f"frame {index} at offset {offset}"
        parsed = longfmt.parse_payload(payload, head.raw_size, where)
        residual = parsed.body
        if parsed.residual_kind == longfmt.RESIDUAL_MODELLED:
            residual = model.decode(parsed.body, parsed.residual_size, threads)
        if not parsed.verify(residual):
            raise CorruptDataError(f"{where} is corrupt (checksum mismatch)")
        return parsed, residual
    raw = payload if head.kind == fmt.FRAME_STORED else model.decode(payload, head.raw_size, threads)
    if fmt.crc32(raw) != head.raw_crc:
        raise CorruptDataError(f"frame {index} at offset {offset} is corrupt (checksum mismatch)")
    return raw
