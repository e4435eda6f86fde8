"""Frames on a Ray cluster: the same archives as on one machine (docs/CLUSTER.md).

A local cluster of two CPUs stands in for a real one; the tests are skipped
where Ray is not installed (it is an extra: ``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import nzip
from nzip.codec import compress, decompress, iter_decompress
from nzip.models.base import Model

ray = pytest.importorskip("ray")
from nzip.cluster import ClusterError, RayCluster  # noqa: E402 - after the skip

WORDS = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _text(n: int, seed: int = 1) -> bytes:
    out, x = [], seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(WORDS[x % len(WORDS)] + str(x % 97).encode())
    return b" ".join(out)


@pytest.fixture(scope="module")
def cluster():
    with RayCluster("local", num_cpus=2) as c:
        yield c


@pytest.mark.parametrize("level", [1, 3, nzip.DEFAULT_LEVEL])
def test_cluster_archives_are_byte_identical(cluster, level: int) -> None:
    text = _text(900)
    data = text + bytes(range(256)) * 8 + text  # several frames, long matches among them
    local = compress(data, level, frame_size=2048)
    assert compress(data, level, frame_size=2048, cluster=cluster) == local
    assert decompress(local, cluster=cluster) == data
    assert b"".join(iter_decompress([local[:100], local[100:]], cluster=cluster)) == data


def test_damage_found_on_the_cluster_names_the_frame(cluster) -> None:
    packed = bytearray(compress(_text(2000), 1, frame_size=1024, long_window_log=None))
    packed[len(packed) // 2] ^= 0x04
    with pytest.raises(nzip.CorruptDataError, match=r"frame \d+"):
        decompress(bytes(packed), cluster=cluster)


class _Private(Model):
    """A model of this process only: workers cannot look it up by name."""

    name = "private"

    @property
    def digest(self) -> bytes:
        return bytes(16)

    def encode(self, data: bytes, threads: int = 1) -> bytes | None:
        return None

    def decode(self, payload: bytes, size: int, threads: int = 1) -> bytes:
        raise AssertionError

    def memory_usage(self, frame_size: int) -> int:
        return frame_size


def test_a_model_workers_cannot_find_is_refused(cluster) -> None:
    with pytest.raises(ClusterError, match="cannot be used on a cluster"):
        compress(_text(2000), 1, frame_size=1024, model=_Private(), cluster=cluster)


def test_a_killed_worker_is_survived(cluster) -> None:
    data = _text(40_000, seed=5)  # about 350 KB: 22 frames of 16 KiB, each a few hundred ms at level 3
    expected = compress(data, 3, frame_size=1 << 14)
    result: dict[str, bytes] = {}
    job = threading.Thread(
        target=lambda: result.setdefault("packed", compress(data, 3, frame_size=1 << 14, cluster=cluster))
    )
    job.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and job.is_alive() and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "ray::_encode_task"], capture_output=True, text=True).stdout.split()
        for pid in map(int, found):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fp:
                    title = fp.read()
            except OSError:
                continue
            if pid != os.getpid() and title.startswith(b"ray::_encode_task"):  # a worker, never this process
                killed = pid
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    job.join()
    assert killed is not None, "no worker was caught coding a frame"
    assert result["packed"] == expected


def _nzip(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nzip", *args], capture_output=True, env=env)


def test_cli_ray_local_round_trip(tmp_path) -> None:
    data = _text(3000)
    src = tmp_path / "data.txt"
    src.write_bytes(data + data)
    local = _nzip("-1", "--frame-size", "4K", "-c", str(src))
    remote = _nzip("-1", "--frame-size", "4K", "--ray", "local", "-c", str(src))
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout
    packed = tmp_path / "data.txt.nz"
    packed.write_bytes(remote.stdout)
    back = _nzip("-d", "--ray", "local", "-c", str(packed))
    assert back.returncode == 0 and back.stdout == data + data
    assert _nzip("-t", "--ray", "local", str(packed)).returncode == 0


def test_cli_cluster_errors_are_one_line(tmp_path) -> None:
    src = tmp_path / "data.txt"
    src.write_bytes(_text(100))
    nobody = _nzip("--ray", "127.0.0.1:1", "-c", str(src))
    assert nobody.returncode == 1 and nobody.stderr.count(b"\n") == 1
    assert b"cannot reach the Ray cluster" in nobody.stderr and not nobody.stdout
    without_ray = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['ray'] = None; from nzip.cli import main; sys.exit(main())",
            "--ray",
            "auto",
            "-c",
            str(src),
        ],
        capture_output=True,
    )
    assert without_ray.returncode == 1
    assert without_ray.stderr == b"nzip: --ray needs Ray: pip install 'nzip[ray]'\n"


def test_cli_directory_on_the_cluster_with_its_manifest(tmp_path) -> None:
    text = _text(4000)
    files = {"a.txt": text, "sub/b.bin": bytes(range(256)) * 64, "sub/empty": b"", "c.txt": text[:5000] + text}
    files.update({f"small/{i}.txt": text[i * 700 : i * 700 + 600 + i] for i in range(6)})  # one task per file
    for root in ("here", "there"):
        for name, data in files.items():
            (tmp_path / root / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / root / name).write_bytes(data)
    options = ("-1", "--frame-size", "4K", "-r")
    assert _nzip(*options, str(tmp_path / "here")).returncode == 0
    remote = _nzip(*options, "--ray", "local", "--manifest", str(tmp_path / "m.jsonl"), str(tmp_path / "there"))
    assert remote.returncode == 0, remote.stderr
    for name in files:
        assert (tmp_path / "there" / (name + ".nz")).read_bytes() == (tmp_path / "here" / (name + ".nz")).read_bytes()
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == len(files)
    (tmp_path / "there" / "c.txt.nz").unlink()
    rerun = _nzip(*options, "-v", "--ray", "local", "--manifest", str(tmp_path / "m.jsonl"), str(tmp_path / "there"))
    assert rerun.returncode == 0 and rerun.stderr.count(b"skipped") == len(files) - 1
    assert (tmp_path / "there" / "c.txt.nz").read_bytes() == (tmp_path / "here" / "c.txt.nz").read_bytes()
    for name in files:  # and back, on the cluster
        (tmp_path / "there" / name).unlink()
    back = _nzip("-d", "-r", "--ray", "local", "--manifest", str(tmp_path / "d.jsonl"), str(tmp_path / "there"))
    assert back.returncode == 0, back.stderr
    for name, data in files.items():
        assert (tmp_path / "there" / name).read_bytes() == data
