"""What an importer hands to quantization: a float model in Hugging Face naming, and its tokenizer.

Both importers (:mod:`.import_hf`, :mod:`.import_gguf`) produce a
:class:`SourceModel`; from there on nothing depends on where the model came
from, which is why a Hugging Face folder and the same weights as GGUF give
identical nzip model files and archives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Architectures the integer engine implements (decoder-only, RMSNorm, rotary, SwiGLU).
SUPPORTED = {
    "llama": "Llama family (Llama 2/3, SmolLM, TinyLlama, Mistral without sliding window)",
    "qwen2": "Qwen2 / Qwen2.5 (q/k/v biases)",
}
MAX_HIDDEN = 8192  # keeps the integer RMSNorm's sum of squares inside int64
MAX_HEAD_DIM = 256  # keeps attention's int32 dot products of 12-bit rows below 2**31 (.attention)
MAX_WINDOW = 1 << 15  # keeps attention's weighted sums of values below 2**53 (.attention)


class UnsupportedModelError(ValueError):
    """The source is a model nzip cannot run (its architecture, or a feature of it)."""


@dataclass
class TokenizerSpec:
    """Enough of a tokenizer to build the token table and the encoder."""

    kind: str  # tokens.BYTE_LEVEL or tokens.SENTENCEPIECE
    tokens: list[str]
    merges: list[tuple[str, str]]
    patterns: tuple[str, ...]
    bos_id: int | None


@dataclass
class SourceModel:
    """A float model as imported: shapes, hyper-parameters and tensors named as in transformers."""

    arch: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    rms_eps: float
    rope_theta: float
    tokenizer: TokenizerSpec
    tensors: dict[str, np.ndarray] = field(repr=False)
    rope_scaling: dict | None = None
    source: str = ""

    def check(self) -> None:
        """Raise :class:`UnsupportedModelError` for anything the engine cannot run exactly."""
        if self.arch not in SUPPORTED:
            raise UnsupportedModelError(f"architecture {self.arch!r} is not supported")
        if self.hidden > MAX_HIDDEN:
            raise UnsupportedModelError(f"hidden size {self.hidden} is above the supported {MAX_HIDDEN}")
        if self.head_dim > MAX_HEAD_DIM:
            raise UnsupportedModelError(f"head size {self.head_dim} is above the supported {MAX_HEAD_DIM}")
        if self.heads % self.kv_heads or self.head_dim % 2:
            raise UnsupportedModelError(f"{self.heads} heads over {self.kv_heads} KV heads is not supported")
        if self.rope_scaling and self.rope_scaling.get("rope_type", "default") not in ("default", "llama3"):
            raise UnsupportedModelError(f"rope scaling {self.rope_scaling.get('rope_type')!r} is not supported")
        if "model.embed_tokens.weight" not in self.tensors:
            raise UnsupportedModelError("the model has no token embedding")
        rows = self.tensors["model.embed_tokens.weight"].shape[0]
        if len(self.tokenizer.tokens) > rows:
            raise UnsupportedModelError(f"tokenizer has {len(self.tokenizer.tokens)} tokens, the model {rows} rows")
        for i in range(self.layers):
            for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):  # fmt: skip
                if f"model.layers.{i}.{part}.weight" not in self.tensors:
                    raise UnsupportedModelError(f"tensor model.layers.{i}.{part}.weight is missing")

    @property
    def tied(self) -> bool:
        return "lm_head.weight" not in self.tensors
