"""The interface every probability model implements.

A model turns the raw bytes of one frame into a coded payload and back.  The
container format only stores the model's identifier and digest and the
payload, and never looks inside; the coder only ever receives integer
probabilities.  So a new model (a neural network, a large language model)
plugs in by subclassing :class:`Model` and registering itself, without
touching the coder or the format.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DIGEST_SIZE = 16


def digest_of(*parts: bytes) -> bytes:
    """The content hash recorded in archives: SHA-256 of the parts, truncated to 16 bytes."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()[:DIGEST_SIZE]


@dataclass(frozen=True)
class FrameTrace:
    """Where one frame's bits went (``nzip explain``).

    ``costs`` has one row per byte and the columns of
    :mod:`nzip.models.trace_kernel`; ``payload`` is the length of the payload
    the encoder writes for the frame when it is modelled (it may exceed the
    frame, which is then stored); ``coded_by`` names what coded it (a model
    may hand a frame to another, as ``nn3`` does to level 3).
    """

    payload: int
    costs: np.ndarray
    coded_by: str


class Model(ABC):
    """A deterministic byte predictor bound to an entropy coder.

    Implementations must be bit-exact: ``decode(encode(data), len(data))``
    returns ``data`` on any machine, thread count or instruction set, which in
    practice means every probability the coder sees comes from integer
    arithmetic.  Frames are independent: a model starts each frame from the
    same initial state.  Both methods must be safe to call from several
    threads at once on different frames.
    """

    #: Identifier stored in archives, ASCII, at most 64 characters.
    name: str

    @property
    @abstractmethod
    def digest(self) -> bytes:
        """Hash of everything that determines the coded bits (parameters, weights, version)."""

    @abstractmethod
    def encode(self, data: bytes, threads: int = 1) -> bytes | None:
        """Code one frame; ``None`` when the result would not be smaller than ``data``.

        ``threads`` is how many threads the frame may use; the result must
        not depend on it.
        """

    @abstractmethod
    def decode(self, payload: bytes, size: int, threads: int = 1) -> bytes:
        """Decode one frame of ``size`` bytes (on up to ``threads`` threads).

        Damaged payloads may decode to wrong bytes (the container's checksum
        catches that) but must never crash or run past ``size``.
        """

    @abstractmethod
    def memory_usage(self, frame_size: int) -> int:
        """Bytes of working memory one encode or decode of such a frame needs."""

    def trace(self, data: bytes) -> FrameTrace | None:
        """Code one frame as :meth:`encode` does and report each byte's cost; None if this model cannot tell."""
        return None

    @property
    def description(self) -> str:
        """One line for ``nzip --list`` and ``--help``."""
        return self.name
