"""Coverage-guided fuzz target for the model file reader (atheris / libFuzzer).

Every input, written to a file, must either load as a usable model
description or raise :class:`nzip.llm.modelfile.ModelFileError`; anything
else is a bug.  The digest check is skipped (``verify=False``) so that the
fuzzer reaches the validation of what a digest-valid but hand-made file
could hold.  Run it with::

    pip install atheris
    python fuzz/fuzz_modelfile.py /tmp/nzm-corpus -max_total_time=600 -rss_limit_mb=4096

The seed corpus is a small model file built on first run.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import atheris
import numba  # noqa: F401 - imported first so that it is not instrumented
import numpy as np

with atheris.instrument_imports(include=["nzip.llm.modelfile", "nzip.llm.quantize", "nzip.llm.tokens"]):
    from nzip.llm import modelfile
    from nzip.llm.quantize import token_codec, validate

_PATH = Path(tempfile.gettempdir()) / f"nzip-fuzz-{os.getpid()}.nzm"


def seed_corpus(directory: Path) -> None:
    """One small, valid model file: two layers of a 16-wide Llama over a 300-token vocabulary."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    from nzip.llm.quantize import quantize
    from nzip.llm.source import SourceModel, TokenizerSpec
    from nzip.llm.tokens import BYTE_LEVEL, GPT2_PATTERN, bytes_to_unicode

    rng = np.random.default_rng(0)
    alphabet = list(bytes_to_unicode().values())
    pairs = list(itertools.pairwise(alphabet[:45]))
    tokens = [*alphabet, *(a + b for a, b in pairs)]
    h, inter, v = 16, 32, len(tokens)
    t = {"model.embed_tokens.weight": rng.normal(size=(v, h)), "model.norm.weight": np.ones(h)}
    for i in range(2):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = t[p + "post_attention_layernorm.weight"] = np.ones(h)
        for name, shape in (("self_attn.q_proj", (h, h)), ("self_attn.k_proj", (8, h)), ("self_attn.v_proj", (8, h)),
                            ("self_attn.o_proj", (h, h)), ("mlp.gate_proj", (inter, h)), ("mlp.up_proj", (inter, h)),
                            ("mlp.down_proj", (h, inter))):  # fmt: skip
            t[p + name + ".weight"] = rng.normal(size=shape)
    merges = pairs
    tok = TokenizerSpec(BYTE_LEVEL, tokens, merges, (GPT2_PATTERN,), 0)
    src = SourceModel("llama", h, 2, 2, 1, 8, inter, 1e-5, 10000.0, tok, t)
    meta, arrays = quantize(src, max_window=16)
    modelfile.write(directory / "seed.nzm", meta, arrays)


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    try:
        meta, arrays, _ = modelfile.read(_PATH, verify=False)
        if validate(meta, arrays) is None:
            token_codec(meta, arrays).encode(b"fuzz \xff text")
    except modelfile.ModelFileError:
        pass


def main() -> None:
    corpus = Path(next((a for a in sys.argv[1:] if not a.startswith("-")), "fuzz/nzm-corpus"))
    seed_corpus(corpus)
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        _PATH.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
