"""``nzip bench --model NAME``: a stored language model beside levels 3 and 6.

For each file: bits per byte of the archive (``--model NAME``, fallback
frames included) and of its token frames alone, the ideal code length of the
integer engine and, with ``--float-source`` (the Hugging Face folder the
model was imported from, needs transformers), of transformers' float64
forward pass on the same tokens and windows; compression and decompression
speed in process (tokens/s and KB/s) and as a whole ``nzip`` process
(start-up and model loading included).  The machine is noisy: compare with
the level 3 and level 6 rows of the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import codec
from ..bench_process import process_seconds
from . import coding, store
from .model import LanguageModel

SEGMENT = 500  # tokens per window of the ideal-code-length comparison


def ideal_bits(model, ids: list[int], float_source: str | None) -> tuple[float, float | None]:
    """Integer and (optionally) float ideal code lengths in bits, in windows of SEGMENT tokens."""
    ref = None
    if float_source:
        import torch
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(float_source, dtype=torch.float64).eval()
    int_bits, float_bits = 0.0, 0.0
    engine = model.engine
    for start in range(0, len(ids), SEGMENT):
        seg = ids[start : start + SEGMENT]
        x = np.array([[model.meta["bos"], *seg[:-1]]])
        logits = engine.xp.numpy(engine.forward(engine.new_cache(1, len(seg)), x))[0]
        freqs = np.empty_like(logits)
        coding.frequencies(logits, engine.exp_table, freqs)
        int_bits += coding.ideal_bits(freqs, np.array(seg))
        if ref is not None:
            import torch

            with torch.no_grad():
                lf = ref(torch.from_numpy(x)).logits[0, :, : model.meta["vocab"]]
            lp = torch.log_softmax(lf, -1)[torch.arange(len(seg)), torch.tensor(seg)]
            float_bits -= lp.sum().item() / np.log(2)
    return int_bits, (float_bits if ref is not None else None)


def _timed(func):
    start = time.perf_counter()
    out = func()
    return out, time.perf_counter() - start


def _process_seconds(argv: list[str], stdin: bytes) -> float:
    return process_seconds(argv, stdin)[0]


def run(name: str, paths: list[Path], float_source: str | None, engine: str, whole_process: bool) -> int:
    store.set_default_engine(engine)  # decompression finds the model through the store
    model = store.load(name, engine=engine)
    tokens_only = LanguageModel(name, str(model.path), engine=engine, fallback=False)
    print(f"model {model.description}; digest {model.digest.hex()}; engine {engine}")
    print("bits/byte: archive (fallback frames allowed), token frames only, ideal integer, ideal float; -3, -6")
    total = np.zeros(7)  # bytes, archive, token frames, ideal integer, ideal float, -3, -6
    for path in paths:
        data = path.read_bytes()
        n = len(data)
        ids = model.codec.encode(data) or []
        blob, c_s = _timed(lambda d=data: codec.compress(d, model=model))
        back, d_s = _timed(lambda b=blob: codec.decompress(b))
        assert back == data, f"{path}: round trip failed"
        tok_blob, tc_s = _timed(lambda d=data: codec.compress(d, model=tokens_only))
        tok_back, td_s = _timed(lambda b=tok_blob: codec.decompress(b))
        assert tok_back == data, f"{path}: round trip of the token frames failed"
        int_bits, float_bits = ideal_bits(model, ids, float_source)
        l3, l6 = (len(codec.compress(data, level)) for level in (3, 6))
        total += (n, 8 * len(blob), 8 * len(tok_blob), int_bits, float_bits or 0.0, 8 * l3, 8 * l6)
        fl = f"{float_bits / n:.4f} ({100 * (int_bits / float_bits - 1):+.2f}%)" if float_bits else "-"
        print(
            f"{path.name}: {n} bytes, {len(ids)} tokens ({n / max(1, len(ids)):.2f} bytes/token): "
            f"{8 * len(blob) / n:.4f} {8 * len(tok_blob) / n:.4f} {int_bits / n:.4f} {fl}; "
            f"{8 * l3 / n:.4f} {8 * l6 / n:.4f}"
        )
        for what, cs, ds in (("archive", c_s, d_s), ("token frames", tc_s, td_s)):
            print(
                f"    in process, {what}: compress {len(ids) / cs:.0f} tokens/s {n / cs / 1e3:.2f} KB/s, "
                f"decompress {len(ids) / ds:.0f} tokens/s {n / ds / 1e3:.2f} KB/s"
            )
        if whole_process:
            cs = _process_seconds(["--model", name, "--engine", engine, "-c", "-q"], data)
            ds = _process_seconds(["--engine", engine, "-d", "-c", "-q"], blob)
            ts = _process_seconds(["--engine", engine, "-d", "-c", "-q"], tok_blob)
            print(
                f"    whole process: compress {n / cs / 1e3:.2f} KB/s, decompress {n / ds / 1e3:.2f} KB/s "
                f"(the token frames: {n / ts / 1e3:.2f} KB/s)"
            )
    if len(paths) > 1:
        n, bits = total[0], total[1:] / total[0]
        fl = f"{bits[3]:.4f} ({100 * (total[3] / total[4] - 1):+.2f}%)" if total[4] else "-"
        print(
            f"total: {int(n)} bytes (total bits over total bytes): {bits[0]:.4f} {bits[1]:.4f} {bits[2]:.4f} {fl}; "
            f"{bits[4]:.4f} {bits[5]:.4f}"
        )
    return 0
