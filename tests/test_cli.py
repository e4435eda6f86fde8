"""The command line, run as a user would: through subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import nzip
from conftest import sample_text


def run(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nzip", *args], cwd=cwd, input=stdin, capture_output=True, timeout=300)


@pytest.fixture
def work(tmp_path: Path, text: bytes) -> Path:
    (tmp_path / "a.txt").write_bytes(text)
    (tmp_path / "b.bin").write_bytes(bytes(range(256)) * 20)
    return tmp_path


def test_compress_keeps_input_and_decompresses(work: Path, text: bytes) -> None:
    r = run("-1", "a.txt", "b.bin", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "a.txt").exists() and (work / "a.txt.nz").exists() and (work / "b.bin.nz").exists()
    (work / "a.txt").unlink()
    r = run("-d", "a.txt.nz", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "a.txt").read_bytes() == text
    assert not list(work.glob(".*tmp"))


def test_refuses_to_overwrite_without_force(work: Path) -> None:
    (work / "a.txt.nz").write_bytes(b"precious")
    r = run("-1", "a.txt", cwd=work)
    assert r.returncode == 1
    assert b"already exists" in r.stderr and b"Traceback" not in r.stderr
    assert (work / "a.txt.nz").read_bytes() == b"precious"
    assert run("-1", "-f", "a.txt", cwd=work).returncode == 0
    assert nzip.decompress((work / "a.txt.nz").read_bytes()) == (work / "a.txt").read_bytes()


def test_rm_removes_input_after_success(work: Path, text: bytes) -> None:
    assert run("-1", "--rm", "a.txt", cwd=work).returncode == 0
    assert not (work / "a.txt").exists()
    assert run("-d", "--rm", "a.txt.nz", cwd=work).returncode == 0
    assert (work / "a.txt").read_bytes() == text and not (work / "a.txt.nz").exists()


def test_stdin_stdout_and_stdout_flag(work: Path, text: bytes) -> None:
    r = run("-2", cwd=work, stdin=text)
    assert r.returncode == 0 and r.stdout.startswith(b"\xc9nz")  # one frame: a compact member
    back = run("-d", cwd=work, stdin=r.stdout)
    assert back.returncode == 0 and back.stdout == text
    c = run("-c", "-1", "a.txt", cwd=work)
    assert c.returncode == 0 and nzip.decompress(c.stdout) == text
    assert not (work / "a.txt.nz").exists()
    o = run("-1", "a.txt", "-o", "custom.bin", cwd=work)
    assert o.returncode == 0 and nzip.decompress((work / "custom.bin").read_bytes()) == text


def test_test_and_list(work: Path) -> None:
    assert run("-1", "a.txt", cwd=work).returncode == 0
    t = run("-t", "a.txt.nz", cwd=work)
    assert t.returncode == 0
    listing = run("-l", "a.txt.nz", cwd=work)
    assert listing.returncode == 0
    line = listing.stdout.decode().splitlines()[1].split()
    assert int(line[0]) == (work / "a.txt.nz").stat().st_size
    assert int(line[1]) == (work / "a.txt").stat().st_size
    assert line[4] == "cm1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an archive at all", b"not an nzip archive"),
        (None, b"truncated"),
        (b"", b"empty"),
    ],
)
def test_bad_archives_fail_cleanly(work: Path, content: bytes | None, message: bytes) -> None:
    if content is None:
        content = nzip.compress((work / "a.txt").read_bytes(), level=1)[:-20]
    (work / "bad.nz").write_bytes(content)
    for flags in (["-d"], ["-t"], ["-l"]):
        r = run(*flags, "bad.nz", cwd=work)
        assert r.returncode == 1, flags
        assert message in r.stderr and b"Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (work / "bad").exists()
    assert not list(work.glob(".*tmp"))


def test_corrupt_frame_reported(work: Path) -> None:
    packed = bytearray(nzip.compress((work / "a.txt").read_bytes(), level=1, compact=False))
    packed[len(packed) // 2] ^= 0x10
    (work / "c.nz").write_bytes(bytes(packed))
    r = run("-d", "c.nz", cwd=work)
    assert r.returncode == 1 and b"frame 0" in r.stderr
    assert not (work / "c").exists()


def test_missing_input_and_suffix_errors(work: Path) -> None:
    r = run("nope.txt", cwd=work)
    assert r.returncode == 1 and b"no such file" in r.stderr
    r = run("-d", "a.txt", cwd=work)
    assert r.returncode == 1 and b"suffix" in r.stderr
    # One bad operand does not stop the others.
    r = run("-1", "nope.txt", "a.txt", cwd=work)
    assert r.returncode == 1 and (work / "a.txt.nz").exists()


def test_version_and_help(work: Path) -> None:
    v = run("--version", cwd=work)
    assert v.returncode == 0 and nzip.__version__.encode() in v.stdout
    h = run("--help", cwd=work)
    assert h.returncode == 0 and b"--decompress" in h.stdout


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs tar")
def test_tar_integration(work: Path) -> None:
    src = work / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.txt").write_bytes(b"hello tar\n" * 100)
    (src / "y.bin").write_bytes(os.urandom(3000))
    nzip_cmd = f"{sys.executable} -m nzip"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(["tar", "-I", nzip_cmd, "-cf", "t.tar.nz", "tree"], cwd=work, check=True, env=env, timeout=300)
    assert (work / "t.tar.nz").read_bytes().startswith(b"\xc9nz")  # a small tarball: one compact member
    (work / "out").mkdir()
    subprocess.run(["tar", "-I", nzip_cmd, "-xf", "t.tar.nz", "-C", "out"], cwd=work, check=True, env=env, timeout=300)
    assert (work / "out" / "tree" / "sub" / "x.txt").read_bytes() == b"hello tar\n" * 100
    assert (work / "out" / "tree" / "y.bin").read_bytes() == (src / "y.bin").read_bytes()
    with tarfile.open(fileobj=nzip.open(work / "t.tar.nz", "rb")) as tf:
        assert "tree/y.bin" in tf.getnames()


def test_usage_errors_and_unwritable_output(work: Path) -> None:
    r = run("--no-such-option", cwd=work)
    assert r.returncode == 1 and b"usage" in r.stderr
    r = run("-f", "a.txt", "-o", str(work / "missing" / "x.nz"), cwd=work)
    assert r.returncode == 1
    target = work / "missing" / "x.nz"
    assert r.stderr.strip().splitlines() == [f"nzip: a.txt: cannot write {target}: No such file or directory".encode()]


def test_threads_default_to_every_core_and_never_change_the_archive(work: Path) -> None:
    data = sample_text(40_000, seed=9)
    default = run("-c", "-", cwd=work, stdin=data)
    one = run("-T", "1", "-c", "-", cwd=work, stdin=data)
    three = run("-T", "3", "-c", "-", cwd=work, stdin=data)
    assert default.returncode == one.returncode == three.returncode == 0
    assert default.stdout == one.stdout == three.stdout
    back = run("-T", "2", "-d", "-c", "-", cwd=work, stdin=default.stdout)
    assert back.returncode == 0 and back.stdout == data
    bad = run("--threads=-1", "-c", "-", cwd=work, stdin=data)
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1


def test_recursive_compress_test_list_and_decompress(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "b" / "c").mkdir(parents=True)
    files = {
        "a.txt": sample_text(3000, seed=1),
        "b/data.bin": os.urandom(500),
        "b/c/deep.txt": sample_text(1200, seed=2),
        "b/c/empty": b"",
    }
    for name, data in files.items():
        (tree / name).write_bytes(data)
    (tree / "old.nz").write_bytes(nzip.compress(b"already an archive", level=1))
    (tree / "link.txt").symlink_to(tree / "a.txt")
    (tree / "b" / "loop").symlink_to(tree, target_is_directory=True)
    r = run("-1", "-r", "--rm", "tree", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.decode()
    assert "old.nz: already has the .nz suffix; unchanged" in warnings
    assert "link.txt: symbolic link; ignored" in warnings and "loop: symbolic link; not followed" in warnings
    for name in files:
        assert (tree / f"{name}.nz").is_file() and not (tree / name).exists()
    assert not (tree / "old.nz.nz").exists() and (tree / "link.txt").is_symlink()
    assert run("-t", "-r", "-q", "tree", cwd=tmp_path).returncode == 0
    listing = run("-l", "-r", "tree", cwd=tmp_path)
    assert listing.returncode == 0 and listing.stdout.decode().count(".nz") == len(files) + 1
    r = run("-d", "-r", "-q", "--rm", "tree", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        assert (tree / name).read_bytes() == data and not (tree / f"{name}.nz").exists()
    assert (tree / "old").read_bytes() == b"already an archive"


def test_directory_without_recursive_is_ignored_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    r = run("-1", "d", cwd=tmp_path)
    assert r.returncode == 1 and b"is a directory; ignored (-r" in r.stderr
