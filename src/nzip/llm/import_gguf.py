"""Read a GGUF file (llama.cpp's format) with the ``gguf`` package.

Tensors are dequantized to float32 (F32, F16, BF16, Q8_0 and the k-quants
that ``gguf.quants`` knows), renamed to Hugging Face names, and the q/k rows
that llama.cpp's converter permutes for Llama models are put back, so the
result matches the Hugging Face folder the GGUF was made from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .source import SUPPORTED, SourceModel, TokenizerSpec, UnsupportedModelError
from .tokens import BYTE_LEVEL, GGUF_PRE_PATTERNS, GPT2_PATTERN, SENTENCEPIECE, merges_from_scores, translate_pattern

_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary row permutation of a q or k projection."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _hf_name(name: str) -> str | None:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    parts = name.split(".")
    if parts[0] == "blk" and len(parts) == 4 and parts[2] in _NAMES:
        return f"model.layers.{parts[1]}.{_NAMES[parts[2]]}.{parts[3]}"
    return None


def read_gguf(path: str | Path) -> SourceModel:
    """A :class:`SourceModel` from a GGUF file."""
    try:
        import gguf
    except ImportError:
        raise UnsupportedModelError("importing GGUF needs the 'gguf' package: pip install 'nzip[llm]'") from None
    path = Path(path)
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:  # the reader raises ValueError, struct.error, IndexError... on bad files
        raise UnsupportedModelError(f"{path.name} is not a readable GGUF file ({type(e).__name__})") from None

    def field(key: str, default=None):
        f = reader.fields.get(key)
        return default if f is None else f.contents()

    arch = field("general.architecture", "?")
    if arch not in SUPPORTED:
        raise UnsupportedModelError(
            f"architecture {arch!r} is not supported; nzip runs: {', '.join(SUPPORTED.values())}"
        )
    hidden = int(field(f"{arch}.embedding_length"))
    heads = int(field(f"{arch}.attention.head_count"))
    kv_heads = int(field(f"{arch}.attention.head_count_kv", heads))
    tensors: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        name = _hf_name(t.name)
        if name is None:
            continue
        try:
            arr = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError:
            raise UnsupportedModelError(
                f"tensor {t.name} has type {t.tensor_type.name}, which nzip cannot read"
            ) from None
        arr = np.asarray(arr, dtype=np.float32).reshape([int(n) for n in reversed(t.shape)])
        if arch == "llama" and t.name.endswith("attn_q.weight"):
            arr = unpermute(arr, heads)
        elif arch == "llama" and t.name.endswith("attn_k.weight"):
            arr = unpermute(arr, kv_heads)
        tensors[name] = arr
    model_kind = field("tokenizer.ggml.model", "?")
    tokens = [str(t) for t in field("tokenizer.ggml.tokens", [])]
    if model_kind == "gpt2":
        kind = BYTE_LEVEL
        merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges", [])]
        pre = field("tokenizer.ggml.pre", "default")
        patterns = tuple(translate_pattern(p) for p in GGUF_PRE_PATTERNS.get(pre, (GPT2_PATTERN,)))
    elif model_kind == "llama":
        kind = SENTENCEPIECE
        merges = merges_from_scores(tokens, [float(s) for s in field("tokenizer.ggml.scores", [0.0] * len(tokens))])
        patterns = ()
    else:
        raise UnsupportedModelError(f"GGUF tokenizer model {model_kind!r} is not supported")
    bos = field("tokenizer.ggml.bos_token_id")
    head_dim = int(field(f"{arch}.attention.key_length", hidden // heads))
    return SourceModel(
        arch=arch,
        hidden=hidden,
        layers=int(field(f"{arch}.block_count")),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=int(field(f"{arch}.feed_forward_length")),
        rms_eps=float(field(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(field(f"{arch}.rope.freq_base", 10000.0)),
        tokenizer=TokenizerSpec(kind, tokens, merges, patterns, int(bos) if bos is not None else None),
        tensors=tensors,
        source=f"GGUF file {path.name}",
    )
