"""Importing beyond the fixture: Q8_0 GGUF, Qwen2 biases, separate output embeddings, padded vocabularies.

Each model is made here with transformers (random weights, seeded) and saved
as a Hugging Face folder; the integer engine must then agree with
transformers' float64 forward pass.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nzip.llm import coding
from nzip.llm.engine import Engine
from nzip.llm.import_gguf import read_gguf
from nzip.llm.import_hf import read_folder
from nzip.llm.quantize import quantize

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FIXTURE = Path(__file__).parent / "llm_fixture"
TOOLS = Path(__file__).resolve().parents[1] / "tools" / "make_test_llm.py"


def _agreement(folder: Path, src) -> tuple[float, float]:
    """(max |integer - float| logit in nats, integer / float ideal bits - 1) on a token sequence."""
    meta, arrays = quantize(src, max_window=256)
    engine = Engine(meta, arrays)
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float64).eval()
    toks = np.random.default_rng(5).integers(0, meta["vocab"], (1, 120))
    with torch.no_grad():
        lf = ref(torch.from_numpy(toks)).logits[0, :, : meta["vocab"]]
    li = engine.forward(engine.new_cache(1, 120), toks)[0]
    freqs = np.empty_like(li)
    coding.frequencies(li, engine.exp_table, freqs)
    targets = toks[0, 1:]
    int_bits = coding.ideal_bits(freqs[:-1], targets)
    float_bits = -torch.log_softmax(lf[:-1], -1)[torch.arange(119), torch.from_numpy(targets)].sum().item() / np.log(2)
    return float(np.abs(li / 1024 - lf.numpy()).max()), int_bits / float_bits - 1


def _save(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    shutil.copy(FIXTURE / "hf" / "tokenizer.json", folder / "tokenizer.json")
    return folder


def test_qwen2_with_biases_and_padded_vocabulary(tmp_path):
    torch.manual_seed(1)
    cfg = transformers.Qwen2Config(
        vocab_size=2112, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6, initializer_range=0.2,
    )  # fmt: skip
    folder = _save(transformers.Qwen2ForCausalLM(cfg), tmp_path / "qwen")
    src = read_folder(folder)
    assert src.arch == "qwen2" and "model.layers.0.self_attn.q_proj.bias" in src.tensors
    meta, _ = quantize(src)
    assert meta["qkv_bias"] and meta["vocab"] == 2048  # the 64 padding rows name no token
    diff, loss = _agreement(folder, src)
    assert diff < 1.0 and abs(loss) < 0.01


def test_llama_with_separate_output_embedding(tmp_path):
    torch.manual_seed(2)
    cfg = transformers.LlamaConfig(
        vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, tie_word_embeddings=False, initializer_range=0.2,
    )  # fmt: skip
    folder = _save(transformers.LlamaForCausalLM(cfg), tmp_path / "llama")
    src = read_folder(folder)
    assert not src.tied
    diff, loss = _agreement(folder, src)
    assert diff < 1.0 and abs(loss) < 0.01


@pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="needs the gguf package")
def test_q8_0_gguf_imports_close_to_the_float_weights(tmp_path):
    spec = importlib.util.spec_from_file_location("make_test_llm", TOOLS)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    hf = FIXTURE / "hf"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32)
    tool.write_gguf(tmp_path / "q8.gguf", model, json.loads((hf / "tokenizer.json").read_text()), model.config, "Q8_0")
    q8, f16 = read_gguf(tmp_path / "q8.gguf"), read_folder(hf)
    assert q8.tokenizer.tokens == f16.tokenizer.tokens and q8.tokenizer.merges == f16.tokenizer.merges
    for name, w in f16.tensors.items():
        assert q8.tensors[name].shape == w.shape
        assert np.abs(q8.tensors[name] - w).max() <= np.abs(w).max() / 100 + 1e-6, name


@pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="needs the gguf package")
def test_sentencepiece_q6_k_gguf_imports_and_round_trips(tmp_path, monkeypatch):
    """A GGUF file with a SentencePiece (``llama``) vocabulary and k-quant weights, as many real files are."""
    import nzip
    from nzip.llm import store
    from nzip.llm.importer import import_model
    from nzip.llm.model import LanguageModel
    from nzip.llm.tokens import SENTENCEPIECE

    tokenizers = pytest.importorskip("tokenizers")
    spec = importlib.util.spec_from_file_location("make_test_llm", TOOLS)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (FIXTURE / "sample.txt").read_bytes()
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(byte_fallback=True))
    tok.normalizer = tokenizers.normalizers.Replace(" ", "\u2581")
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok.train_from_iterator([text.decode()], tokenizers.trainers.BpeTrainer(vocab_size=700, special_tokens=specials))
    tok_json = json.loads(tok.to_str())
    torch.manual_seed(3)
    cfg = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, initializer_range=0.05,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg)
    tool.write_gguf(tmp_path / "sp-q6k.gguf", model, tok_json, cfg, "Q6_K", sentencepiece=True)
    src = read_gguf(tmp_path / "sp-q6k.gguf")
    assert src.tokenizer.kind == SENTENCEPIECE and src.tokenizer.bos_id == 1
    ref = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for name, w in src.tensors.items():
        want = ref[name]
        assert w.shape == want.shape, name
        assert np.abs(w - want).max() <= np.abs(want).max() / 20 + 1e-6, name  # 6-bit groups; q/k unpermuted
    monkeypatch.setenv("NZIP_MODELS", str(tmp_path / "store"))
    import_model(tmp_path / "sp-q6k.gguf", "spk")
    lm = LanguageModel("spk", str(store.model_path("spk")), fallback=False)
    assert len(lm.codec.encode(text[:1500])) < 1500 * 0.6  # the merges recovered from the scores apply
    for data in [text[:1500], b"\x00\xff raw bytes \xc3", "caf\u00e9 \U0001f600".encode()]:
        assert nzip.decompress(nzip.compress(data, model=lm)) == data
