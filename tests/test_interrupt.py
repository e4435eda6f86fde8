"""SIGINT and SIGTERM mid-run leave the input untouched and no output behind."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nzip
from conftest import sample_text


def _interrupt(args: list[str], cwd: Path, sig: int) -> subprocess.CompletedProcess:
    """Start ``nzip args``, wait until it is writing its output, then send ``sig``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nzip", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not list(cwd.glob(".*.tmp")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def big() -> bytes:
    return sample_text(3_000_000, seed=5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_compression(tmp_path: Path, big: bytes, sig: int) -> None:
    src = tmp_path / "big.txt"
    src.write_bytes(big)
    r = _interrupt(["-3", "big.txt"], tmp_path, sig)
    assert r.returncode == 128 + sig, r.stderr
    assert b"interrupted" in r.stderr and b"Traceback" not in r.stderr
    assert src.read_bytes() == big
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]


def test_interrupted_decompression(tmp_path: Path, big: bytes) -> None:
    packed = nzip.compress(big, level=1)
    (tmp_path / "big.txt.nz").write_bytes(packed)
    r = _interrupt(["-d", "--rm", "big.txt.nz"], tmp_path, signal.SIGINT)
    assert r.returncode == 130, r.stderr
    assert (tmp_path / "big.txt.nz").read_bytes() == packed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt.nz"]


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_at_a_random_point_leaves_nothing_under_the_output_name(tmp_path: Path, seed: int) -> None:
    """SIGKILL cannot be handled: only the temporary name may remain, never a partial ``.nz`` or input loss."""
    data = sample_text(600_000, seed=seed)
    src = tmp_path / "data.txt"
    src.write_bytes(data)
    proc = subprocess.Popen([sys.executable, "-m", "nzip", "-1", "--rm", "data.txt"], cwd=tmp_path)
    time.sleep(random.Random(seed).uniform(0.2, 2.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    archive = tmp_path / "data.txt.nz"
    if archive.exists():  # the run finished first: then it is complete and the input was removed after it
        assert nzip.decompress(archive.read_bytes()) == data
    else:
        assert src.read_bytes() == data
    assert {p.name for p in tmp_path.iterdir()} - {"data.txt", "data.txt.nz"} <= {
        p.name for p in tmp_path.glob(".data.txt.nz.*.tmp")
    }
