"""Archives do not depend on threads or on the instruction set numba compiles for."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nzip
from conftest import sample_text

SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
import nzip
from conftest import sample_text
data = sample_text(30000, seed=3) + bytes(range(256)) * 4
for level in (1, 2, 3, 6):
    packed = nzip.compress(data, level=level, frame_size=8192, threads={threads})
    assert nzip.decompress(packed, threads={threads}) == data
    print(level, hashlib.sha256(packed).hexdigest())
"""


def _digests(threads: int, env: dict[str, str]) -> str:
    code = SCRIPT.format(tests=str(Path(__file__).parent), threads=threads)
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def _here() -> str:
    data = sample_text(30000, seed=3) + bytes(range(256)) * 4
    return "".join(
        f"{level} {hashlib.sha256(nzip.compress(data, level=level, frame_size=8192)).hexdigest()}\n"
        for level in (1, 2, 3, 6)
    )


@pytest.mark.parametrize(
    ("threads", "env"),
    [
        (2, {}),
        (1, {"NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": "{tmp}"}),
        (2, {"NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": "{tmp}", "NUMBA_NUM_THREADS": "1"}),
        (2, {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
    ],
)
def test_same_archive_everywhere(tmp_path: Path, threads: int, env: dict[str, str]) -> None:
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    assert _digests(threads, env) == _here()
