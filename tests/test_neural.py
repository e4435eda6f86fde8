"""The neural model: integer engine exactness, the lane kernel, shipped weights."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import nzip
from conftest import sample_text
from nzip.errors import ModelMismatchError
from nzip.models import NEURAL, NEURAL_V2, model_for_level, resolve
from nzip.models.neural import MAX_LANES, lane_count
from nzip.nn.engine import FREQ_TOTAL, START_BYTE, GRUEngine

LANES, STEPS = 12, 40


def _lane_bytes() -> np.ndarray:
    data = sample_text(LANES * STEPS, seed=5) + b""
    return np.frombuffer(data, dtype=np.uint8).reshape(LANES, STEPS)


ADAPT_RATE = 1573  # a faster rate than nn2's, so that 40 steps show learning


def _active(t: int, lanes: int) -> int:
    """Lanes that count for learning at step ``t``: the last lane stops early, as a short last lane does."""
    return lanes if t < STEPS - 5 else lanes - 1


def _run(engine: GRUEngine, lanes: np.ndarray, rate: int = 0) -> np.ndarray:
    """Frequencies (steps, lanes, 256) when ``lanes`` are read one byte per step (learning if ``rate``)."""
    state = engine.new_state(lanes.shape[0], rate)
    freqs = np.empty((lanes.shape[0], 256), dtype=np.int64)
    out = []
    inputs = np.full(lanes.shape[0], START_BYTE, dtype=np.uint8)
    for t in range(lanes.shape[1]):
        engine.step(state, inputs, freqs)
        out.append(freqs.copy())
        inputs = lanes[:, t]
        if rate:
            engine.learn(state, inputs, freqs, _active(t, lanes.shape[0]))
    return np.stack(out)


@pytest.fixture(scope="module")
def engine() -> GRUEngine:
    return NEURAL.engine


@pytest.fixture(scope="module")
def reference(engine: GRUEngine) -> np.ndarray:
    return _run(engine, _lane_bytes())


@pytest.fixture(scope="module")
def adaptive(engine: GRUEngine) -> np.ndarray:
    return _run(engine, _lane_bytes(), ADAPT_RATE)


def test_learning_output_layer_predicts_better(engine: GRUEngine, reference: np.ndarray, adaptive: np.ndarray) -> None:
    """Dynamic evaluation changes the frequencies, and on text (here a repetitive sample) for the better."""
    lanes = _lane_bytes()
    assert (adaptive >= 1).all() and (adaptive.sum(axis=2) == FREQ_TOTAL).all()
    assert np.array_equal(adaptive[0], reference[0]) and not np.array_equal(adaptive[-1], reference[-1])
    index = lanes.T[:, :, None].astype(np.int64)
    fixed = -np.log2(np.take_along_axis(reference, index, axis=2)).sum()
    learned = -np.log2(np.take_along_axis(adaptive, index, axis=2)).sum()
    assert learned < fixed


def test_frequencies_are_a_distribution(reference: np.ndarray) -> None:
    assert (reference >= 1).all()
    assert (reference.sum(axis=2) == FREQ_TOTAL).all()


def test_model_predicts_text(engine: GRUEngine, reference: np.ndarray) -> None:
    """The shipped weights are a trained model: English is far below 8 bits per byte."""
    lanes = _lane_bytes()
    p = np.take_along_axis(reference, lanes.T[:, :, None].astype(np.int64), axis=2)
    bits = -np.log2(p / FREQ_TOTAL).mean()
    assert bits < 4.0


@pytest.mark.parametrize("batch", [1, 5, LANES])
def test_batch_size_does_not_change_frequencies(engine: GRUEngine, reference: np.ndarray, batch: int) -> None:
    lanes = _lane_bytes()
    for first in range(0, LANES, batch):
        part = _run(engine, lanes[first : first + batch])
        assert np.array_equal(part, reference[:, first : first + batch])


def test_torch_reference_is_bit_identical(engine: GRUEngine, reference: np.ndarray, adaptive: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from nzip.nn.torch_engine import TorchGRUEngine

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    lanes = _lane_bytes()
    for device in devices:
        for rate, expected in ((0, reference), (ADAPT_RATE, adaptive)):
            ref = TorchGRUEngine(engine, device)
            h = ref.new_state(LANES, rate)
            inputs = torch.full((LANES,), START_BYTE, dtype=torch.int64)
            for t in range(STEPS):
                h, freqs = ref.step(h, inputs)
                assert np.array_equal(freqs.cpu().numpy(), expected[t]), (device, rate, t)
                inputs = torch.from_numpy(lanes[:, t].astype(np.int64))
                if rate:
                    ref.learn(h, inputs, freqs, _active(t, LANES))


SCRIPT = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_neural import ADAPT_RATE, _lane_bytes, _run
from nzip.models import NEURAL
for rate in (0, ADAPT_RATE):
    print(hashlib.sha256(_run(NEURAL.engine, _lane_bytes(), rate).tobytes()).hexdigest())
"""


@pytest.mark.parametrize(
    "env",
    [
        {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
        {"NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": "{tmp}"},
    ],
    ids=["blas-1-thread", "blas-2-threads", "generic-cpu"],
)
def test_frequencies_same_in_other_processes(
    tmp_path: Path, reference: np.ndarray, adaptive: np.ndarray, env: dict[str, str]
) -> None:
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    code = SCRIPT.format(tests=str(Path(__file__).parent))
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == [hashlib.sha256(a.tobytes()).hexdigest() for a in (reference, adaptive)]


def test_default_level_uses_the_neural_model() -> None:
    assert model_for_level(nzip.DEFAULT_LEVEL) is NEURAL
    assert all(model_for_level(level) is NEURAL for level in range(4, 10))


@pytest.mark.parametrize(
    "size", [1, 2, 37, 2047, 2048, 4095, 4096, 3 * 2048 + 1, MAX_LANES * 2048 + 5], ids=lambda s: f"{s}B"
)
def test_roundtrip_across_lane_layouts(size: int) -> None:
    data = (sample_text(size + 1, seed=size) + b"x" * size)[:size]
    payload = NEURAL_V2.encode(data)  # the lanes alone (nn3 may pick its fallback instead)
    if payload is not None:
        assert payload[0] == lane_count(size)
        assert NEURAL_V2.decode(payload, size) == data


def test_roundtrip_binary_and_repeats() -> None:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    data = noise + sample_text(9000) + noise  # long matches across lanes
    payload = NEURAL.encode(data)
    assert payload is not None
    assert NEURAL.decode(payload, len(data)) == data
    assert NEURAL.encode(noise) is None  # incompressible: stored instead


def test_default_model_keeps_the_smaller_of_network_and_level_3() -> None:
    """nn3 codes each frame both ways and records which: structured binary goes to level 3, text to the lanes."""
    cm3 = model_for_level(3)
    rng = np.random.default_rng(11)
    ids = np.repeat(np.arange(600, dtype=np.uint32), 2)
    records = np.stack([ids, ids * 7 + 3, rng.integers(0, 4, ids.size, dtype=np.uint32)], axis=1)
    for data, network_wins in ((records.astype("<u4").tobytes(), False), (sample_text(30000, seed=4), True)):
        payload, alone, level3 = NEURAL.encode(data), NEURAL_V2.encode(data), cm3.encode(data)
        assert NEURAL.decode(payload, len(data)) == data
        assert len(payload) == min(len(alone), len(level3) + 1)
        assert (payload[0] != 0) == network_wins == (len(alone) <= len(level3) + 1)


def test_lane_count() -> None:
    assert lane_count(1) == 1
    assert lane_count(4095) == 1
    assert lane_count(4096) == 2
    assert lane_count(10**9) == MAX_LANES


def test_damaged_payloads_decode_without_crashing() -> None:
    data = sample_text(20000, seed=2)
    payload = bytearray(NEURAL.encode(data))
    rng = np.random.default_rng(3)
    for _ in range(5):
        bad = bytearray(payload)
        for i in rng.integers(0, len(bad), 4):
            bad[i] ^= 1 << int(rng.integers(0, 8))
        assert len(NEURAL.decode(bytes(bad), len(data))) == len(data)
    assert NEURAL.decode(b"", 100) == bytes(100)
    assert NEURAL_V2.decode(b"\x00abc", 100) == bytes(100)
    assert len(NEURAL.decode(b"\x00abc", 100)) == 100  # a damaged fallback payload
    with pytest.raises(nzip.CorruptDataError):
        archive = bytearray(nzip.compress(data, level=6))
        archive[len(archive) // 2] ^= 0x10
        nzip.decompress(bytes(archive))


def test_weights_ship_in_the_package_without_pickle() -> None:
    files = list(resources.files("nzip.nn").joinpath("weights").iterdir())
    assert sum(f.stat().st_size for f in files if f.name.endswith(".npz")) <= 16 * 2**20
    for name in ("gru320a", "gru320b"):
        with np.load(resources.files("nzip.nn").joinpath("weights", f"{name}.npz"), allow_pickle=False) as f:
            assert all(f[k].dtype != object for k in f.files)


def test_archive_names_the_model_it_needs() -> None:
    archive = nzip.compress(b"some text to compress " * 100, level=6, compact=False)
    assert NEURAL.name.encode() in archive[:100]
    with pytest.raises(ModelMismatchError, match=NEURAL.name):
        resolve(NEURAL.name, bytes(16))


def test_malformed_weights_are_rejected(engine: GRUEngine) -> None:
    with np.load(resources.files("nzip.nn").joinpath("weights", f"{NEURAL.network}.npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    assert GRUEngine(arrays).digest == engine.digest
    for name, bad in [
        ("w_hh0", arrays["w_hh0"].astype(np.int16)),
        ("table0", arrays["table0"][:10]),
        ("m_out", -arrays["m_out"]),
        ("format", np.array([99], dtype=np.int32)),
    ]:
        with pytest.raises(ValueError):
            GRUEngine({**arrays, name: bad})
    changed = {**arrays, "b_out": arrays["b_out"] + 1}
    assert GRUEngine(changed).digest != engine.digest


def test_exported_model_matches_its_float_original(tmp_path: Path) -> None:
    """Export of a (briefly trained) torch model: integer inference loses almost nothing."""
    torch = pytest.importorskip("torch")
    from nzip.nn.export import export_state
    from nzip.nn.train import ByteGRU

    torch.manual_seed(0)
    torch.set_num_threads(1)
    text = np.frombuffer(sample_text(8 * 257, seed=9), dtype=np.uint8).astype(np.int64).reshape(8, 257)
    model = ByteGRU(hidden=48, layers=2, embed=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.from_numpy(text)
    for _ in range(40):
        logits, _ = model(x[:, :-1], torch.zeros(2, 8, 48))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    start = torch.full((8, 1), START_BYTE, dtype=torch.int64)
    with torch.no_grad():
        logits, _ = model(torch.cat([start, x[:, :-1]], dim=1), torch.zeros(2, 8, 48))
        float_bits = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), x.reshape(-1)).item() / np.log(2)
    path = tmp_path / "m.npz"
    export_state({k: v.detach().double().numpy() for k, v in model.state_dict().items()}, 48, 2, str(path))
    freqs = _run(GRUEngine.load(path), text.astype(np.uint8))
    p = np.take_along_axis(freqs, text.T[:, :, None], axis=2)
    int_bits = -np.log2(p / FREQ_TOTAL).mean()
    assert float_bits < 4.5  # it learned something (8 bits per byte untrained)
    assert abs(int_bits - float_bits) < 0.02 * float_bits


def test_runtime_needs_no_torch() -> None:
    """``pip install .`` pulls no PyTorch, and the default level works with torch unimportable."""
    from importlib.metadata import requires

    runtime = [r for r in requires("nzip") or [] if "extra ==" not in r]
    assert runtime and not any(r.lower().startswith("torch") for r in runtime)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import nzip\n"
        "data = b'offline, with the packaged weights ' * 200\n"
        "assert nzip.decompress(nzip.compress(data)) == data\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
