"""Build a random-weight model of a real model's shape, for speed measurements.

No pretrained model can be downloaded here, so the speed of nzip's integer
engine on a 135M or 0.5B model is measured on a model of that shape with
random weights (transformers' own initialisation) and a byte-level BPE of
the same vocabulary size trained on ``../shared/corpus``.  Its compressed
sizes mean nothing; its speed is the real model's.  Run from the
repository root::

    python tools/make_shape_model.py smollm2-135m /tmp/smol-shape
    nzip model import /tmp/smol-shape --name smol-shape
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_llm import sample_corpus, train_tokenizer

SHAPES = {
    "smollm2-135m": dict(
        arch="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True, rope_theta=100000.0,
    ),
    "qwen2.5-0.5b": dict(
        arch="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0,
    ),
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer-bytes", type=int, default=8 << 20, help="corpus bytes to train the BPE on")
    args = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    shape = dict(SHAPES[args.shape])
    arch = shape.pop("arch")
    torch.manual_seed(0)
    tok = train_tokenizer(sample_corpus(args.tokenizer_bytes, seed=1), shape["vocab_size"])
    vocab = tok.get_vocab_size()
    config_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    cfg = config_cls(max_position_embeddings=8192, rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=0, **shape)
    model = model_cls(cfg).to(torch.bfloat16)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save(str(args.out / "tokenizer.json"))
    print(f"{args.shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {vocab} tokens trained")


if __name__ == "__main__":
    main()
