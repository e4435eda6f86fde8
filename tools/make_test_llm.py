"""Build the tiny test language model that nzip's tests and docs use.

Trains a byte-level BPE tokenizer (``tokenizers``) and a small Llama
(``transformers``) on ``../shared/corpus``, then saves it twice: as a Hugging
Face folder (config.json, tokenizer.json, model.safetensors in float16) and
as a GGUF file (float16) written with the ``gguf`` package, so that both
import paths can be checked against each other.  Run from the repository
root::

    python tools/make_test_llm.py --minutes 12 --out tests/llm_fixture
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MIX = {"books": 0.40, "wiki": 0.18, "code": 0.15, "docs": 0.12, "multilingual": 0.08, "data": 0.07}


def sample_corpus(total: int, seed: int = 0) -> list[str]:
    """About ``total`` bytes of text drawn from every corpus section, in 4 KB pieces."""
    rng = random.Random(seed)
    pieces = []
    for section, share in MIX.items():
        files = sorted(p for p in (CORPUS / section).rglob("*") if p.is_file())
        budget = int(total * share)
        while budget > 0:
            path = rng.choice(files)
            data = path.read_bytes()
            if len(data) < 8192:
                continue
            start = rng.randrange(0, len(data) - 4096)
            text = data[start : start + 4096].decode("utf-8", "ignore")
            pieces.append(text)
            budget -= 4096
    rng.shuffle(pieces)
    return pieces


def train_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (length a multiple of 256) as GGUF Q6_K blocks (the ``gguf`` package only dequantizes them).

    A block of 256 values is 16 groups of 16 with an int8 scale each and one
    float16 scale for the block: ``x ~ d * scale[group] * (q - 32)``, ``q`` of 6
    bits, stored as ``ql`` (128 bytes of low nibbles), ``qh`` (64 bytes of
    high bit pairs), the 16 scales and ``d``.  Within each half of 128 values,
    byte ``l`` of ``ql`` holds values ``l`` and ``l + 64`` and byte ``32 + l``
    values ``l + 32`` and ``l + 96``; byte ``l`` of ``qh`` holds the high bits
    of ``l``, ``l + 32``, ``l + 64`` and ``l + 96``.
    """
    rows, cols = x.shape
    blocks = x.astype(np.float32).reshape(-1, 16, 16)
    group_scale = np.abs(blocks).max(axis=2) / 31.0
    d = (group_scale.max(axis=1) / 127.0).astype(np.float16)
    dd = np.where(d.astype(np.float32) > 0, d.astype(np.float32), 1.0)
    sc = np.clip(np.rint(group_scale / dd[:, None]), -128, 127).astype(np.int8)
    step = dd[:, None, None] * np.where(sc == 0, 1, sc).astype(np.float32)[:, :, None]
    q = (np.clip(np.rint(blocks / step), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)  # half, quarter, l
    ql = np.concatenate([q[:, :, 0] & 15 | (q[:, :, 2] & 15) << 4, q[:, :, 1] & 15 | (q[:, :, 3] & 15) << 4], axis=2)
    qh = q[:, :, 0] >> 4 | (q[:, :, 1] >> 4) << 2 | (q[:, :, 2] >> 4) << 4 | (q[:, :, 3] >> 4) << 6
    out = np.concatenate(
        [ql.reshape(-1, 128), qh.reshape(-1, 64), sc.view(np.uint8), d.reshape(-1, 1).view(np.uint8)], axis=1
    )
    return out.reshape(rows, cols // 256 * 210)


def write_gguf(path: Path, model, tok_json: dict, cfg, qtype: str = "F16", sentencepiece: bool = False) -> None:
    """The same weights as a llama.cpp-style GGUF (q/k rows permuted as its converter does).

    ``qtype`` ``"Q8_0"`` or ``"Q6_K"`` stores the matrices quantized, as
    llama.cpp's files of those types do (Q6_K where rows are a multiple of 256
    long, Q8_0 elsewhere).  ``sentencepiece``: ``tok_json`` is a SentencePiece-style
    BPE (``\u2581`` spaces, ``<0xNN>`` byte tokens), written as GGUF's ``llama``
    tokenizer with scores instead of merges.
    """
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("nzip-test-llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    file_types = {"F16": "MOSTLY_F16", "Q8_0": "MOSTLY_Q8_0", "Q6_K": "MOSTLY_Q6_K"}
    w.add_file_type(getattr(gguf.LlamaFileType, file_types[qtype]))
    vocab = tok_json["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = {a["id"] for a in tok_json["added_tokens"] if a.get("special")}
    if sentencepiece:
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([-float(i) for i in range(len(tokens))])  # BPE rank order, best first
        byte = {i for i, t in enumerate(tokens) if len(t) == 6 and t.startswith("<0x") and t.endswith(">")}
        w.add_token_types([6 if i in byte else 3 if i in special else 1 for i in range(len(tokens))])
        w.add_bos_token_id(1)
    else:
        merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tokens)
        w.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
        w.add_token_merges(merges)
        w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads

    def permute(t: np.ndarray, n: int) -> np.ndarray:
        rows, cols = t.shape
        return t.reshape(n, 2, rows // n // 2, cols).swapaxes(1, 2).reshape(rows, cols)

    sd = {k: v.detach().to(torch.float16).numpy() for k, v in model.state_dict().items()}
    add = w.add_tensor
    if qtype != "F16":

        def add(name: str, arr: np.ndarray) -> None:
            if arr.ndim == 1:
                return w.add_tensor(name, arr)
            if qtype == "Q6_K" and arr.shape[1] % 256 == 0:
                q, kind = quantize_q6_k(arr), gguf.GGMLQuantizationType.Q6_K
            else:
                kind = gguf.GGMLQuantizationType.Q8_0
                q = gguf.quants.quantize(arr.astype(np.float32), kind)
            return w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=kind)

    add("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        add(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"].astype(np.float32))
        add(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], heads))
        add(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], kv))
        add(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        add(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        add(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"].astype(np.float32))
        add(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        add(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        add(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    add("output_norm.weight", sd["model.norm.weight"].astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("tests/llm_fixture"))
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    texts = sample_corpus(24 << 20)
    tok = train_tokenizer(texts[: len(texts) // 3], args.vocab)
    cfg = LlamaConfig(
        vocab_size=args.vocab, hidden_size=64, intermediate_size=192, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg)
    ids = np.concatenate([np.array([*tok.encode(t).ids, 0], dtype=np.int64) for t in texts])
    print(f"{len(ids)} tokens, {sum(len(t.encode()) for t in texts) / len(ids):.2f} bytes/token", flush=True)
    seq, batch = 256, 32
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    start, step, deadline = time.time(), 0, time.time() + args.minutes * 60
    while time.time() < deadline:
        frac = (time.time() - start) / (args.minutes * 60)
        for g in opt.param_groups:
            g["lr"] = 3e-4 + (3e-3 - 3e-4) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        offs = np.random.randint(0, len(ids) - seq - 1, batch)
        x = torch.from_numpy(np.stack([ids[o : o + seq + 1] for o in offs]))
        loss = model(input_ids=x[:, :-1], labels=x[:, :-1].clone()).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)
    model = model.to(torch.float16).to(torch.float32)  # the saved weights are float16: test what is saved
    hf = args.out / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(hf)
    tok.save(str(hf / "tokenizer.json"))
    tok_json = json.loads((hf / "tokenizer.json").read_text())
    write_gguf(args.out / "test-llama.gguf", model, tok_json, cfg)
    print("saved", sorted(str(p) for p in args.out.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
