"""Bits per byte of the integer network alone, as the compressor runs it (no PyTorch needed).

Usage::

    python -m nzip.nn.evaluate [--weights FILE.npz] [--rate N] FILE...

Each file is cut into lanes exactly as level 4-9 frames are (one frame per
file), and the cost is ``-log2(freq / 65536)`` of every actual byte under the
engine's integer frequencies: the size an arithmetic coder would reach with
the network and no context mixing.  ``--rate`` lets the output layer learn
while it goes, as model ``nn2`` does (0: fixed weights).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..models import NEURAL
from ..models.neural import lane_count
from .engine import FREQ_TOTAL, START_BYTE, GRUEngine


def network_bits(engine: GRUEngine, data: bytes, rate: int = 0) -> float:
    """Total information content of ``data`` in bits under the network, with the compressor's lanes."""
    size = len(data)
    lanes = lane_count(size)
    lane_len = -(-size // lanes)
    lanes = -(-size // lane_len)
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = np.arange(lanes) * lane_len
    state = engine.new_state(lanes, rate)
    freqs = np.empty((lanes, 256), dtype=np.int64)
    inputs = np.full(lanes, START_BYTE, dtype=np.uint8)
    bits = 0.0
    for t in range(lane_len):
        engine.step(state, inputs, freqs)
        pos = starts + t
        live = pos < size
        actual = buf[pos[live]]
        bits -= np.log2(freqs[np.flatnonzero(live), actual] / FREQ_TOTAL).sum()
        inputs = buf[np.minimum(pos, size - 1)]
        if rate:
            engine.learn(state, inputs, freqs, int(live.sum()))
    return bits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nzip.nn.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help=f"a model file (default: the shipped {NEURAL.network})")
    parser.add_argument(
        "--rate",
        type=int,
        default=0,
        help=f"output layer learning rate, 2**-20 units ({NEURAL.name}: {NEURAL.adapt_rate})",
    )
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    engine = GRUEngine.load(args.weights) if args.weights else NEURAL.engine
    total_bits = total_bytes = 0.0
    for name in args.files:
        with open(name, "rb") as f:
            data = f.read()
        if not data:
            continue
        start = time.perf_counter()
        bits = network_bits(engine, data, args.rate)
        elapsed = time.perf_counter() - start
        total_bits += bits
        total_bytes += len(data)
        print(f"{name}: {len(data)} bytes, {bits / len(data):.3f} bits/byte, {len(data) / elapsed / 1e3:.1f} KB/s")
    if total_bytes:
        print(f"all: {total_bits / total_bytes:.3f} bits/byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
