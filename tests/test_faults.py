"""Write faults are errors: full disks, /dev/full, closed pipes and failing file objects.

The tmpfs tests mount a 64 KiB file system, the way a full disk looks to a
program: the first ``write(2)`` that crosses the limit comes back short and
only the next one fails with ENOSPC.  They need root (CI runs as root) and
are skipped with the reason where mounting is refused.
"""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nzip
from nzip import cli
from nzip._write import CheckedOutput, OutputError, write_all

DISK = 64 * 1024


def run(
    *args: str, cwd: Path, stdout: object = subprocess.PIPE, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nzip", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, input=stdin, timeout=300
    )


def one_error_line(stderr: bytes, name: str) -> None:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"nzip: {name}: "), lines
    assert "Traceback" not in lines[0]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted under ``tmp_path``."""
    mount = tmp_path / "full"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """Incompressible data: its archive is larger than the disk."""
    path = tmp_path / "big.bin"
    path.write_bytes(random.Random(1).randbytes(3 * DISK))
    return path


@pytest.fixture
def big_archive(tmp_path: Path, big: Path) -> Path:
    path = tmp_path / "big.bin.nz"
    path.write_bytes(nzip.compress(big.read_bytes(), level=1))
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("mode", [["-1", "-c"], ["-d", "-c"], ["-d", "-c", "--salvage"]])
def test_stdout_on_a_full_disk_is_an_error(full_disk: Path, big: Path, big_archive: Path, mode: list[str]) -> None:
    source = big if mode[0] == "-1" else big_archive
    with open(full_disk / "out", "wb") as fp:
        r = run(*mode, str(source), cwd=full_disk.parent, stdout=fp)
    assert r.returncode == 1
    one_error_line(r.stderr, "stdout")
    assert "No space left on device" in r.stderr.decode()


@pytest.mark.parametrize("mode", [["-1"], ["-d"], ["-d", "--salvage"]])
def test_named_output_on_a_full_disk_leaves_nothing(
    full_disk: Path, big: Path, big_archive: Path, mode: list[str]
) -> None:
    source = big if mode[0] == "-1" else big_archive
    target = full_disk / "out"
    r = run(*mode, str(source), "-o", str(target), cwd=full_disk.parent)
    assert r.returncode == 1
    one_error_line(r.stderr, str(target))
    assert leftovers(full_disk) == []


def test_in_place_with_rm_keeps_the_input(full_disk: Path) -> None:
    data = random.Random(2).randbytes(40 * 1024)  # fits on the disk; its archive does not fit beside it
    src = full_disk / "data.bin"
    src.write_bytes(data)
    r = run("-1", "--rm", "data.bin", cwd=full_disk)
    assert r.returncode == 1
    one_error_line(r.stderr, "data.bin.nz")
    assert leftovers(full_disk) == ["data.bin"]
    assert src.read_bytes() == data


def test_tar_through_nzip_on_a_full_disk_fails(full_disk: Path, tmp_path: Path, big: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("no tar")
    nzip_cmd = tmp_path / "nzip-cmd"
    nzip_cmd.write_text(f'#!/bin/sh\nexec {sys.executable} -m nzip -1 "$@"\n')
    nzip_cmd.chmod(0o755)
    r = subprocess.run(
        ["tar", "-I", str(nzip_cmd), "-cf", str(full_disk / "a.tar.nz"), big.name],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    assert r.returncode != 0
    assert b"No space left on device" in r.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("mode", [["-1", "-c"], ["-d", "-c"]])
def test_dev_full(tmp_path: Path, big: Path, big_archive: Path, mode: list[str]) -> None:
    source = big if mode[0] == "-1" else big_archive
    with open("/dev/full", "wb") as fp:
        r = run(*mode, str(source), cwd=tmp_path, stdout=fp)
    assert r.returncode == 1
    one_error_line(r.stderr, "stdout")


def test_reader_that_closes_the_pipe_early(tmp_path: Path, big_archive: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nzip", "-d", "-c", str(big_archive)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1
    one_error_line(err, "stdout")
    assert "Broken pipe" in err.decode()


class FailingFile(io.RawIOBase):
    """A file object whose ``fail_at``-th call to ``write`` (or ``flush``) fails with ``error``."""

    def __init__(self, fail_at: int, where: str = "write", error: int = errno.ENOSPC) -> None:
        self.fail_at, self.where, self.error = fail_at, where, error
        self.calls = 0
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def _tick(self, where: str) -> None:
        if where == self.where:
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(self.error, os.strerror(self.error))

    def write(self, b: object) -> int:
        self._tick("write")
        view = memoryview(b).cast("B")  # type: ignore[arg-type]
        self.data += view
        return len(view)

    def flush(self) -> None:
        self._tick("flush")


class ShortFile(FailingFile):
    """Accepts at most ``limit`` bytes per call, then nothing at all after ``total`` bytes."""

    def __init__(self, limit: int, total: int | None = None) -> None:
        super().__init__(0)
        self.limit, self.total = limit, total

    def write(self, b: object) -> int:
        view = memoryview(b).cast("B")[: self.limit]  # type: ignore[arg-type]
        if self.total is not None:
            view = view[: max(0, self.total - len(self.data))]
        self.data += view
        return len(view)


class FullDisk(FailingFile):
    """Like a full disk: writes what fits in ``space`` bytes, then fails with ENOSPC."""

    def __init__(self, space: int) -> None:
        super().__init__(0)
        self.space = space

    def write(self, b: object) -> int:
        room = self.space - len(self.data)
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = memoryview(b).cast("B")[:room]  # type: ignore[arg-type]
        self.data += view
        return len(view)


def _write_archive(fp: io.RawIOBase, data: bytes) -> None:
    with nzip.NzipFile(fp, "wb", level=1, frame_size=4096) as f:
        for i in range(0, len(data), 3000):
            f.write(data[i : i + 3000])


def test_nzipfile_reports_every_failing_write(text: bytes) -> None:
    calls = FailingFile(0)
    _write_archive(calls, text)
    assert calls.calls >= 3, "the archive should take several writes"
    for n in range(1, calls.calls + 1):
        with pytest.raises(OSError) as info:
            _write_archive(FailingFile(n), text)
        assert info.value.errno == errno.ENOSPC


def test_nzipfile_completes_short_writes_and_refuses_a_stalled_file(text: bytes) -> None:
    short = ShortFile(limit=7)
    _write_archive(short, text)
    assert nzip.decompress(bytes(short.data)) == text
    with pytest.raises(OSError):
        _write_archive(ShortFile(limit=7, total=100), text)


def test_write_all_retries_the_rest_so_the_real_error_surfaces() -> None:
    raw = ShortFile(limit=10, total=25)
    with pytest.raises(OSError):
        write_all(raw, b"x" * 100)
    assert bytes(raw.data) == b"x" * 25
    with pytest.raises(OSError) as info:
        write_all(io.BufferedWriter(FullDisk(100), buffer_size=16), b"y" * 1000)
    assert info.value.errno == errno.ENOSPC


@pytest.mark.parametrize("where", ["write", "flush"])
def test_checked_output_names_itself(where: str) -> None:
    out = CheckedOutput(FailingFile(1, where=where, error=errno.EIO), "somewhere.nz")
    with pytest.raises(OutputError) as info:
        out.write(b"abc")
        out.flush()
    assert str(info.value) == f"somewhere.nz: {os.strerror(errno.EIO)}"


@pytest.mark.parametrize("point", ["fsync", "replace"])
def test_atomic_output_leaves_nothing_when_any_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    target = tmp_path / "out.nz"

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(cli.os, point, fail)
    with pytest.raises(OutputError) as info:
        with cli.atomic_output(str(target), force=False, like=None) as out:
            out.write(b"payload")
    assert info.value.output == str(target)
    assert leftovers(tmp_path) == []
