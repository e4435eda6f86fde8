"""The language-model backend: import, tokens, integer engine, coding, store, CLI.

Uses the tiny Llama in ``tests/llm_fixture`` (trained by ``tools/make_test_llm.py``
on the corpus), saved as a Hugging Face folder and as GGUF.  No network, no
``../shared``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nzip
from nzip.errors import ModelMismatchError
from nzip.llm import coding, modelfile, store
from nzip.llm.engine_numpy import NumpyBackend
from nzip.llm.importer import import_model
from nzip.llm.model import MODE_FALLBACK, MODE_TOKENS, LanguageModel
from nzip.llm.source import UnsupportedModelError

FIXTURE = Path(__file__).parent / "llm_fixture"
HF, GGUF = FIXTURE / "hf", FIXTURE / "test-llama.gguf"
TEXT = (Path(__file__).parent / "llm_fixture" / "sample.txt").read_bytes()

ODD_INPUTS = [
    b"",
    b"a",
    b"\x00\x01\x02\xff\xfe",
    b"\xc3",  # truncated UTF-8
    b"\xed\xa0\x80 encoded surrogate",
    b"\xf4\x90\x80\x80 beyond U+10FFFF",
    b"<|endoftext|> is text here, not a special token",
    "\u2581 SentencePiece's space mark as plain text".encode(),
    b"  spaces   and\ttabs\r\n\r\nCRLF lines\n\n\n",
    "caf\u00e9 vs cafe\u0301 (NFC and NFD kept as they are)".encode(),
    "\u65e5\u672c\u8a9e, \u0440\u0443\u0441\u0441\u043a\u0438\u0439".encode(),
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629, emoji \U0001f600\u200d".encode(),
    "digits 1234567890 \u00b2\u00b3 \u0663\u0664 under_score".encode(),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The fixture imported twice, from the HF folder and from the GGUF file, into two stores."""
    a, b = tmp_path_factory.mktemp("store_hf"), tmp_path_factory.mktemp("store_gguf")
    old = os.environ.get("NZIP_MODELS")
    try:
        os.environ["NZIP_MODELS"] = str(a)
        import_model(HF, "tiny")
        os.environ["NZIP_MODELS"] = str(b)
        import_model(GGUF, "tiny")
    finally:
        if old is None:
            os.environ.pop("NZIP_MODELS", None)
        else:
            os.environ["NZIP_MODELS"] = old
    return a, b


@pytest.fixture
def store_env(stores, monkeypatch):
    monkeypatch.setenv("NZIP_MODELS", str(stores[0]))
    return stores[0]


def _tokens_model(directory: Path, **kw) -> LanguageModel:
    return LanguageModel("tiny", str(directory / "tiny.nzm"), fallback=False, **kw)


def test_token_table_round_trips_any_bytes(store_env):
    codec = store.load("tiny").codec
    rng = np.random.default_rng(1)
    for data in [*ODD_INPUTS, rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), TEXT]:
        ids = codec.encode(data)
        assert ids is not None
        assert codec.decode(ids) == data
    assert 0 not in codec.encode(b"<|endoftext|>")  # the special token is never matched in input


def test_encoder_matches_the_models_tokenizer(store_env):
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(HF / "tokenizer.json"))
    text = TEXT.decode("utf-8")
    assert store.load("tiny").codec.encode(TEXT) == hf.encode(text).ids


def test_hf_and_gguf_give_the_same_model_and_archive(stores):
    digests = [modelfile.read_header(d / "tiny.nzm")[3] for d in stores]
    assert digests[0] == digests[1]
    archives = [nzip.compress(TEXT[:3000], model=_tokens_model(d)) for d in stores]
    assert archives[0] == archives[1]


def test_round_trip_with_lanes_and_window_restarts(store_env, monkeypatch):
    import nzip.llm.model as model_mod

    monkeypatch.setattr(model_mod, "MIN_LANE_TOKENS", 200)
    m = _tokens_model(store_env, window=96, overlap=24)
    payload = m.encode(TEXT)
    assert payload[0] == MODE_TOKENS and payload[1] > 1  # several lanes
    assert m.decode(payload, len(TEXT)) == TEXT
    # the decoder follows the window recorded in the frame, not its own default
    assert _tokens_model(store_env).decode(payload, len(TEXT)) == TEXT


def test_every_odd_input_round_trips_through_archives(store_env):
    m = _tokens_model(store_env)
    for data in ODD_INPUTS:
        assert nzip.decompress(nzip.compress(data, model=m)) == data
    rnd = np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert nzip.decompress(nzip.compress(rnd, model="tiny")) == rnd


def test_fallback_codes_binary_data_with_context_mixing(store_env):
    data = bytes(range(256)) * 40
    payload = store.load("tiny").encode(data)
    assert payload[0] == MODE_FALLBACK
    assert store.load("tiny").decode(payload, len(data)) == data


@pytest.mark.parametrize("arithmetic", [1, 2])
def test_window_pass_and_steps_give_identical_logits(store_env, arithmetic):
    engine = _tokens_model(store_env, arithmetic=arithmetic).engine
    toks = np.random.default_rng(3).integers(0, 2048, (3, 50))
    whole = engine.forward(engine.new_cache(3, 64), toks)
    cache = engine.new_cache(3, 64)
    steps = np.concatenate([engine.forward(cache, toks[:, i : i + 1]) for i in range(50)], axis=1)
    chunks = engine.new_cache(3, 64)
    parts = np.concatenate([engine.forward(chunks, toks[:, i : i + 7]) for i in range(0, 50, 7)], axis=1)
    alone = np.concatenate([engine.forward(engine.new_cache(1, 64), toks[i : i + 1]) for i in range(3)])
    assert np.array_equal(whole, steps) and np.array_equal(whole, parts) and np.array_equal(whole, alone)


@pytest.mark.parametrize("arithmetic", [1, 2])
def test_numpy_and_torch_engines_give_identical_archives(store_env, arithmetic):
    pytest.importorskip("torch")
    a = nzip.compress(TEXT[:2500], model=_tokens_model(store_env, arithmetic=arithmetic))
    b = nzip.compress(TEXT[:2500], model=_tokens_model(store_env, engine="torch", arithmetic=arithmetic))
    gpu = _tokens_model(store_env, engine="torch-ops", arithmetic=arithmetic)  # what a GPU runs
    assert a == b == nzip.compress(TEXT[:2500], model=gpu)


def test_attention_kernel_matches_tensor_formulas_at_the_bounds():
    """The compiled attention and its tensor form (what torch and CUDA run) give the same integers."""
    from nzip.llm import attention
    from nzip.llm.engine import Engine

    rng = np.random.default_rng(7)
    lanes, heads, kv_heads, d, window, start, t = 3, 6, 2, 64, 96, 40, 9
    lim = attention.LEVELS
    kq, vq = (rng.choice([-lim, -1, 0, 1, lim], size=(lanes, kv_heads, window, d)).astype(np.int16) for _ in "kv")
    top = ((attention.CLIP_ROW << 16) + lim // 2) // lim  # the largest scale quantize_heads gives
    kr, vr = (rng.integers(1, top + 1, (lanes, kv_heads, window)) for _ in "kv")
    qq = rng.choice([-lim, lim, 3], size=(lanes, t, heads, d)).astype(np.int16)
    qr = rng.integers(1, top + 1, (lanes, t, heads))
    exp = np.rint(65536 * np.exp(-np.arange(24 << 10) / 1024)).astype(np.int64)
    engine = Engine.__new__(Engine)
    engine.xp, engine.exp, engine.exp_len = NumpyBackend(), exp, len(exp)
    engine.heads, engine.kv_heads, engine.head_dim, engine.inv_sqrt_d = heads, kv_heads, d, round(65536 / d**0.5)
    args = (qq, qr, kq, kr, vq, vr, start)
    want = engine._attend_tensors(*args)
    got = engine.xp.attend(*args, engine.inv_sqrt_d, exp)
    assert np.array_equal(got, want) and np.abs(got).max() > 1 << 16
    x = rng.integers(-(1 << 22), 1 << 22, (50, d))
    x[0], x[1] = 0, attention.CLIP_ROW
    xq, xr = engine.xp.quantize_heads(x)
    assert np.abs(xq).max() == lim and xr.max() <= top


@pytest.mark.skipif(
    "not __import__('importlib').util.find_spec('torch') or not __import__('torch').cuda.is_available()"
)
@pytest.mark.parametrize("arithmetic", [1, 2])
def test_cuda_engine_matches_cpu(store_env, arithmetic):
    a = nzip.compress(TEXT[:2500], model=_tokens_model(store_env, arithmetic=arithmetic))
    assert nzip.compress(TEXT[:2500], model=_tokens_model(store_env, engine="cuda", arithmetic=arithmetic)) == a


_DIGEST_SCRIPT = """
import hashlib, sys, nzip
from nzip.llm.model import LanguageModel
m = LanguageModel("tiny", sys.argv[1], fallback=False)
print(hashlib.sha256(nzip.compress(open(sys.argv[2], "rb").read(), model=m)).hexdigest())
"""


def test_archives_identical_across_blas_threads_and_instruction_sets(store_env, tmp_path):
    sample = tmp_path / "sample.txt"
    sample.write_bytes(TEXT[:2000])
    results = set()
    variants = ({"OPENBLAS_NUM_THREADS": "1"}, {"OPENBLAS_NUM_THREADS": "2"}, {"NUMBA_NUM_THREADS": "1"},
                {"NUMBA_CPU_NAME": "generic"})  # fmt: skip
    for env in variants:
        full = {**os.environ, **env, "NUMBA_CACHE_DIR": str(tmp_path / env.popitem()[0])}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, str(store_env / "tiny.nzm"), str(sample)],
            env=full, capture_output=True, text=True, check=True,
        )  # fmt: skip
        results.add(out.stdout.strip())
    assert len(results) == 1


def test_coding_overhead_is_small(store_env):
    m = _tokens_model(store_env)
    engine = m.engine
    ids = np.array(m.codec.encode(TEXT[:4000]))
    inputs = np.concatenate([[m.meta["bos"]], ids[:-1]])[None, :]
    logits = engine.forward(engine.new_cache(1, len(ids)), inputs)[0]
    freqs = np.empty_like(logits)
    coding.frequencies(logits, engine.exp_table, freqs)
    assert (freqs >= 1).all() and (freqs.sum(axis=1) == coding.FREQ_TOTAL).all()
    out, state, cum = np.empty(len(ids) * 4, np.uint8), np.zeros(4, np.int64), np.empty(freqs.shape[1] + 1, np.int64)
    coding.start(False, out, state)
    assert coding.code_tokens(False, state, out, out, freqs, ids.copy(), cum)
    coded_bits = 8 * coding.finish(False, state, out)
    assert coded_bits < coding.ideal_bits(freqs, ids) * 1.003


def test_integer_engine_within_one_percent_of_float(store_env):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    m = store.load("tiny")
    ids = m.codec.encode(TEXT)
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(HF), dtype=torch.float64).eval()
    float_bits = int_bits = 0.0
    for start in range(0, len(ids), 500):
        seg = ids[start : start + 500]
        x = [m.meta["bos"], *seg[:-1]]
        with torch.no_grad():
            lf = ref(torch.tensor([x])).logits[0]
        float_bits -= torch.log_softmax(lf, -1)[torch.arange(len(seg)), torch.tensor(seg)].sum().item() / np.log(2)
        li = m.engine.forward(m.engine.new_cache(1, len(seg)), np.array([x]))[0]
        freqs = np.empty_like(li)
        coding.frequencies(li, m.engine.exp_table, freqs)
        int_bits += coding.ideal_bits(freqs, np.array(seg))
        assert np.abs(li / 1024 - lf.numpy()).max() < 1.0
    assert int_bits < float_bits * 1.01


@pytest.mark.parametrize("arithmetic", [1, 2])
def test_golden_archive(store_env, arithmetic):
    """Archives of every engine arithmetic decode forever (and the encoder still makes them)."""
    golden = (FIXTURE / ("golden-tiny.nz" if arithmetic == 1 else f"golden-tiny-a{arithmetic}.nz")).read_bytes()
    assert nzip.decompress(golden) == TEXT[:3000]
    assert nzip.compress(TEXT[:3000], model=_tokens_model(store_env, arithmetic=arithmetic)) == golden


def _cli(*args, env_dir, **kw):
    env = {**os.environ, "NZIP_MODELS": str(env_dir)}
    return subprocess.run([sys.executable, "-m", "nzip", *args], env=env, capture_output=True, **kw)


def test_cli_import_compress_decompress_list(tmp_path):
    models = tmp_path / "models"
    assert _cli("model", "import", str(GGUF), "--name", "tiny", env_dir=models).returncode == 0
    listed = _cli("model", "list", env_dir=models, text=True).stdout
    assert "tiny" in listed and "llama" in listed
    src = tmp_path / "text.txt"
    src.write_bytes(TEXT[:2000])
    assert _cli("--model", "tiny", "-T", "2", "--frame-size", "1K", str(src), env_dir=models).returncode == 0
    assert "tiny" in _cli("-l", str(src) + ".nz", env_dir=models, text=True).stdout
    assert _cli("-t", str(src) + ".nz", env_dir=models).returncode == 0
    out = _cli("-d", "-c", str(src) + ".nz", env_dir=models)
    assert out.returncode == 0 and out.stdout == TEXT[:2000]


def _one_line_error(proc, *words):
    err = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
    assert proc.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_cli_errors_are_one_line(tmp_path, stores):
    models = tmp_path / "models"
    bad = tmp_path / "gpt2"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    _one_line_error(_cli("model", "import", str(bad), env_dir=models), "GPT2LMHeadModel", "not supported")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model" * 10)
    _one_line_error(_cli("model", "import", str(junk), env_dir=models), "unsupported model file")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(GGUF.read_bytes()[:5000])
    _one_line_error(_cli("model", "import", str(truncated), env_dir=models), "cut.gguf")
    # an archive whose model is missing, then present with another digest, then corrupt
    src = tmp_path / "t.txt"
    src.write_bytes(TEXT[:1500])
    assert _cli("--model", "tiny", "-c", str(src), env_dir=stores[0]).returncode == 0
    archive = tmp_path / "t.txt.nz"
    archive.write_bytes(_cli("--model", "tiny", "-c", str(src), env_dir=stores[0]).stdout)
    _one_line_error(
        _cli("-d", "-c", str(archive), env_dir=models), "tiny", "not in the model store", "nzip model import"
    )
    other = tmp_path / "other"
    other.mkdir()
    meta, arrays, _ = modelfile.read(stores[0] / "tiny.nzm")
    arrays = dict(arrays)
    arrays["l0.o.m"] = np.asarray(arrays["l0.o.m"]) + 1
    modelfile.write(other / "tiny.nzm", meta, arrays)
    _one_line_error(_cli("-d", "-c", str(archive), env_dir=other), "digest")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    blob = bytearray((stores[0] / "tiny.nzm").read_bytes())
    blob[-100] ^= 0x40
    (corrupt / "tiny.nzm").write_bytes(bytes(blob))
    _one_line_error(_cli("-d", "-c", str(archive), env_dir=corrupt), "corrupt")
    _one_line_error(_cli("--model", "no-such", str(src), "-c", env_dir=models), "no-such", "nzip model import")


def test_api_names_a_stored_model(store_env, tmp_path):
    blob = nzip.compress(TEXT[:1000], model="tiny")
    assert nzip.decompress(blob) == TEXT[:1000]
    with nzip.open(tmp_path / "x.nz", "wt", model="tiny", encoding="utf-8") as f:
        f.write("hello from the API\n" * 20)
    with nzip.open(tmp_path / "x.nz", "rt", encoding="utf-8") as f:
        assert f.read() == "hello from the API\n" * 20
    with pytest.raises(ModelMismatchError):
        store.load("tiny", b"\0" * 16)


def test_model_store_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("NZIP_MODELS", str(tmp_path))
    import_model(HF, "a")
    with pytest.raises(store.StoreError, match="already exists"):
        import_model(HF, "a")
    with pytest.raises(store.StoreError, match="invalid model name"):
        import_model(HF, "../evil")
    with pytest.raises(store.StoreError, match="invalid model name"):
        import_model(HF, "nn2")
    assert [m.name for m in store.list_models()] == ["a"]
    store.remove("a")
    assert store.list_models() == []


def test_unsupported_features_are_named():
    with pytest.raises(UnsupportedModelError, match="sliding"):
        from nzip.llm.import_hf import read_folder

        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"nzip-mistral-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(HF, tmp)
        cfg = json.loads((tmp / "config.json").read_text())
        cfg.update(model_type="mistral", sliding_window=4096)
        (tmp / "config.json").write_text(json.dumps(cfg))
        try:
            read_folder(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    import dataclasses

    from nzip.llm.import_hf import read_folder
    from nzip.llm.quantize import quantize

    src = read_folder(HF)
    with pytest.raises(UnsupportedModelError, match="window"):  # past the attention kernel's exactness bound
        quantize(src, max_window=(1 << 15) + 1)
    with pytest.raises(UnsupportedModelError, match="head size"):
        dataclasses.replace(src, head_dim=512).check()


def test_model_file_reader_refuses_damage(tmp_path, stores):
    path = stores[0] / "tiny.nzm"
    blob = path.read_bytes()
    for cut in (0, 10, 100, len(blob) // 2):
        (tmp_path / "m.nzm").write_bytes(blob[:cut])
        with pytest.raises(modelfile.ModelFileError):
            modelfile.read(tmp_path / "m.nzm")
    assert modelfile.read(path)[2] == modelfile.read_header(path)[3]  # the intact file still loads


def test_model_file_parser_survives_mutations(tmp_path, stores):
    """Random damage to a model file gives ModelFileError, never another exception or a usable model."""
    blob = (stores[0] / "tiny.nzm").read_bytes()
    header_end = 16 + int.from_bytes(blob[8:16], "little")
    rng = np.random.default_rng(7)
    target = tmp_path / "m.nzm"
    for _ in range(150):
        damaged = bytearray(blob)
        for pos in rng.integers(0, header_end + 256, rng.integers(1, 4)):
            damaged[pos] = rng.integers(0, 256)
        if bytes(damaged) == blob:
            continue
        target.write_bytes(bytes(damaged))
        try:
            LanguageModel("tiny", str(target))
        except modelfile.ModelFileError:
            continue
        # only a change outside what the digest covers (whitespace, the descriptive "info") may load
        got, want = modelfile.read_header(target), modelfile.read_header(stores[0] / "tiny.nzm")
        assert (got[0], got[2], got[3]) == (want[0], want[2], want[3])


def test_model_file_with_valid_digest_but_bad_contents_is_refused(tmp_path, stores):
    meta, arrays, _ = modelfile.read(stores[0] / "tiny.nzm")
    for change in ({"hidden": "64"}, {"vocab": 10**9}, {"heads": 3}, {"act_bits": 4}):
        modelfile.write(tmp_path / "m.nzm", {**meta, **change}, dict(arrays))
        with pytest.raises(modelfile.ModelFileError, match="not usable"):
            LanguageModel("tiny", str(tmp_path / "m.nzm"))
    broken = dict(arrays)
    broken["l1.down.sh"] = np.zeros_like(np.asarray(broken["l1.down.sh"]))
    modelfile.write(tmp_path / "m.nzm", meta, broken)
    with pytest.raises(modelfile.ModelFileError, match="shifts"):
        LanguageModel("tiny", str(tmp_path / "m.nzm"))
    for index, value in ((-1, 1), (0, 0), (5, 1 << 17)):  # the attention kernel's bounds assume these
        table = np.array(arrays["table.exp"])
        table[index] = value
        modelfile.write(tmp_path / "m.nzm", meta, {**arrays, "table.exp": table})
        with pytest.raises(modelfile.ModelFileError, match="out of range"):
            LanguageModel("tiny", str(tmp_path / "m.nzm"))


def test_sentencepiece_byte_fallback_tokens_round_trip(tmp_path):
    """A SentencePiece-style BPE (Metaspace, <0xNN> byte fallback) spells any bytes, merging as it can."""
    tokenizers = pytest.importorskip("tokenizers")
    from nzip.llm.import_hf import read_tokenizer
    from nzip.llm.tokens import SENTENCEPIECE, TokenCodec, byte_fallback_ids, token_bytes_table

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(byte_fallback=True))
    tok.normalizer = tokenizers.normalizers.Replace(" ", "\u2581")
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=600, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([TEXT.decode()], trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    spec = read_tokenizer(tmp_path / "tokenizer.json", 1)
    assert spec.kind == SENTENCEPIECE
    index = {t: i for i, t in enumerate(spec.tokens)}
    merges = np.array([[index[a], index[b]] for a, b in spec.merges], dtype=np.int32)
    byte_ids = frozenset(byte_fallback_ids(spec.tokens))
    codec = TokenCodec(spec.kind, token_bytes_table(spec.tokens, spec.kind), merges, (), byte_ids)
    for data in [*ODD_INPUTS, TEXT]:
        ids = codec.encode(data)
        assert ids is not None and codec.decode(ids) == data
    assert len(codec.encode(TEXT)) < len(TEXT) * 0.7  # merges apply
    assert set(codec.encode(b"\xff\xfe")) <= byte_ids


def test_frames_threads_streaming_and_salvage(store_env):
    from nzip.recover import salvage

    m = _tokens_model(store_env)
    data = TEXT[:4096]
    one = nzip.compress(data, model=m, frame_size=1024)
    assert nzip.compress(data, model=m, frame_size=1024, threads=2) == one
    comp = nzip.Compressor(model=m, frame_size=1024)
    pieces = b"".join(comp.compress(data[i : i + 333]) for i in range(0, len(data), 333)) + comp.flush()
    assert pieces == one
    assert nzip.decompress(one, threads=2) == data
    damaged = bytearray(one)
    damaged[len(one) // 2] ^= 0x10  # inside the second or third frame's payload
    out: list[bytes] = []
    damages = salvage(bytes(damaged), out.append)
    assert len(damages) == 1
    restored = b"".join(out)
    assert len(restored) == len(data)
    assert sum(a == b for a, b in zip(restored, data, strict=True)) >= 3072  # three of four frames intact


def test_long_matches_work_below_a_language_model(store_env):
    import io

    from nzip.info import scan

    m = _tokens_model(store_env)
    data = TEXT[:2048] + bytes(range(256)) * 4 + TEXT[:2048]  # the text again, two frames later
    packed = nzip.compress(data, model=m, frame_size=1024)
    assert scan(io.BytesIO(packed))[0].long_frames >= 2
    assert nzip.decompress(packed, threads=2) == data
    assert len(packed) < 0.8 * len(nzip.compress(data, model=m, frame_size=1024, long_window_log=None))
