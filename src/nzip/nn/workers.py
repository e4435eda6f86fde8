"""One network step on several threads, with results identical to one thread.

Within a step the lanes of a frame are independent (:meth:`GRUEngine.step`
with a lane range), and the output layer's learning changes one row per
symbol (:meth:`GRUEngine.learn_rows`), so both split into disjoint parts
that threads compute at once.  Every part is integer arithmetic written to
its own rows, so how the work is split, and on how many threads, never
changes a bit.  The calling thread computes the first part itself; the
numba kernels and the matrix products release the GIL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from .engine import GRUEngine, State


def split(count: int, parts: int) -> list[slice]:
    """``range(count)`` cut into at most ``parts`` contiguous, non-empty, nearly equal slices."""
    parts = max(1, min(parts, count))
    bounds = [count * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


class StepWorkers:
    """Steps one frame's network state on ``threads`` threads (the caller and ``threads - 1`` helpers).

    Use it as a context manager so the helpers end with the frame.  Each
    helper waits on a lock of its own rather than a barrier: a hand-off
    through two plain locks costs about 14 us here against 50 us for a
    barrier's two waits, and a frame takes one per step.
    """

    def __init__(self, engine: GRUEngine, state: State, lanes: int, threads: int) -> None:
        self.engine = engine
        self.state = state
        self._lanes = split(lanes, threads)
        self._task: Callable[[int], None] | None = None
        self._errors: list[BaseException] = []
        self._go = [threading.Lock() for _ in self._lanes[1:]]
        self._done = [threading.Lock() for _ in self._lanes[1:]]
        for lock in (*self._go, *self._done):
            lock.acquire()
        self._helpers = [
            threading.Thread(target=self._serve, args=(i,), name=f"nzip-step-{i + 1}", daemon=True)
            for i in range(len(self._go))
        ]
        for t in self._helpers:
            t.start()

    def __enter__(self) -> StepWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, inputs: np.ndarray, freqs: np.ndarray) -> None:
        """:meth:`GRUEngine.step` for every lane, each thread a range of lanes."""
        self._run(lambda i: self.engine.step(self.state, inputs, freqs, self._lanes[i]))

    def learn(self, targets: np.ndarray, freqs: np.ndarray, active: int) -> None:
        """:meth:`GRUEngine.learn`, on the calling thread.

        It changes few rows per step (about 70 of 256 on text), too little
        to pay for a hand-off.
        """
        self.engine.learn(self.state, targets, freqs, active)

    def close(self) -> None:
        """End the helper threads (idempotent)."""
        if self._helpers:
            self._task = None
            for lock in self._go:
                lock.release()
            for t in self._helpers:
                t.join()
            self._helpers = []

    def _run(self, task: Callable[[int], None]) -> None:
        self._task = task
        for lock in self._go:
            lock.release()
        try:
            task(0)
        finally:
            for lock in self._done:
                lock.acquire()
        if self._errors:
            raise self._errors.pop()

    def _serve(self, index: int) -> None:
        go, done = self._go[index], self._done[index]
        while True:
            go.acquire()
            task = self._task
            if task is None:
                return
            try:
                task(index + 1)
            except BaseException as e:  # re-raised by the caller after the step
                self._errors.append(e)
            finally:
                done.release()
