"""Read a Hugging Face model folder: config.json, tokenizer.json and safetensors weights.

Only numpy is needed: safetensors is a JSON header followed by raw little-endian
arrays, read here directly (single files and sharded ones with an index),
so importing works without torch or transformers installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .source import SUPPORTED, SourceModel, TokenizerSpec, UnsupportedModelError
from .tokens import BYTE_LEVEL, DIGITS_PATTERN, GPT2_PATTERN, SENTENCEPIECE, translate_pattern

_MODEL_TYPES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
_SAFE_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of one .safetensors file, as float32."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if not 0 < n < 1 << 27:
            raise UnsupportedModelError(f"{path.name} is not a safetensors file")
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if path.stat().st_size > 8 + n else b""
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFE_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise UnsupportedModelError(f"tensor {name} has dtype {spec['dtype']}, not a float type nzip imports")
        lo, hi = spec["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=np.dtype(dtype).newbyteorder("<")).reshape(spec["shape"])
        if spec["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float32)
    return out


def _weights(folder: Path) -> dict[str, np.ndarray]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").exists():
        shards = ["model.safetensors"]
    else:
        raise UnsupportedModelError(f"{folder} has no model.safetensors (nzip does not read pickled .bin weights)")
    tensors: dict[str, np.ndarray] = {}
    for shard in shards:
        tensors.update(read_safetensors(folder / shard))
    return tensors


def _patterns(pre: dict | None, kind: str) -> tuple[str, ...]:
    """The pre-tokenizer as a list of :mod:`re` patterns applied in turn."""
    if not pre:
        return ()
    kind_of = pre.get("type")
    if kind_of == "Sequence":
        return tuple(p for sub in pre.get("pretokenizers", []) for p in _patterns(sub, kind))
    if kind_of == "ByteLevel":
        return (translate_pattern(GPT2_PATTERN),) if pre.get("use_regex", True) else ()
    if kind_of == "Digits":
        return (translate_pattern(DIGITS_PATTERN if pre.get("individual_digits") else r"\p{N}+"),)
    if kind_of == "Split":
        pattern = pre.get("pattern", {})
        regex = pattern.get("Regex") if "Regex" in pattern else None
        if regex is None and "String" in pattern:
            import re

            regex = re.escape(pattern["String"])
        translated = translate_pattern(regex) if regex else None
        return (translated,) if translated else (translate_pattern(GPT2_PATTERN),)
    return ()


def read_tokenizer(path: Path, bos_id: int | None) -> TokenizerSpec:
    """The parts of a ``tokenizer.json`` nzip needs."""
    tok = json.loads(path.read_text(encoding="utf-8"))
    model = tok.get("model", {})
    if model.get("type") != "BPE":
        raise UnsupportedModelError(f"tokenizer type {model.get('type')!r} is not supported (only BPE)")
    text = json.dumps([tok.get("pre_tokenizer"), tok.get("decoder"), tok.get("normalizer")])
    if "ByteLevel" in text:
        kind = BYTE_LEVEL
    elif model.get("byte_fallback") or "\u2581" in text or "Metaspace" in text:
        kind = SENTENCEPIECE
    else:
        raise UnsupportedModelError("tokenizer is neither byte-level BPE nor SentencePiece with byte fallback")
    vocab: dict[str, int] = dict(model["vocab"])
    for added in tok.get("added_tokens", []):
        vocab.setdefault(added["content"], added["id"])
    tokens = [""] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    return TokenizerSpec(kind, tokens, merges, _patterns(tok.get("pre_tokenizer"), kind), bos_id)


def read_folder(folder: str | Path) -> SourceModel:
    """A :class:`SourceModel` from a Hugging Face model folder."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise UnsupportedModelError(f"{folder} is not a Hugging Face model folder (no config.json)")
    cfg = json.loads((folder / "config.json").read_text())
    model_type = cfg.get("model_type", "?")
    arch = _MODEL_TYPES.get(model_type)
    if arch is None:
        names = ", ".join(cfg.get("architectures") or [model_type])
        raise UnsupportedModelError(
            f"architecture {names} ({model_type}) is not supported; nzip runs: {', '.join(SUPPORTED.values())}"
        )
    if model_type == "mistral" and cfg.get("sliding_window"):
        raise UnsupportedModelError("Mistral with a sliding attention window is not supported")
    if not (folder / "tokenizer.json").exists():
        raise UnsupportedModelError(f"{folder} has no tokenizer.json")
    rope = cfg.get("rope_parameters") or {}
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    scaling = cfg.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    bos = cfg.get("bos_token_id")
    return SourceModel(
        arch=arch,
        hidden=hidden,
        layers=cfg["num_hidden_layers"],
        heads=heads,
        kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or hidden // heads,
        intermediate=cfg["intermediate_size"],
        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(theta),
        rope_scaling=scaling,
        tokenizer=read_tokenizer(folder / "tokenizer.json", bos if isinstance(bos, int) else None),
        tensors={
            k: v for k, v in _weights(folder).items() if not (cfg.get("tie_word_embeddings") and k == "lm_head.weight")
        },
        source=f"Hugging Face folder {folder.name}",
    )
