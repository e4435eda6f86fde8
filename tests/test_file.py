"""NzipFile and nzip.open behave like their gzip and lzma counterparts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import nzip


def test_write_read_binary(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "a.nz"
    with nzip.open(path, "wb", level=1) as f:
        assert f.write(text[:1000]) == 1000
        f.write(memoryview(text[1000:]))
    with nzip.open(path, "rb") as f:
        assert f.read(10) == text[:10]
        assert f.peek(1)[:1] == text[10:11]
        f.seek(0)
        assert f.read() == text
        f.seek(100)
        assert f.read(5) == text[100:105]
        assert f.tell() == 105


def test_text_mode(tmp_path: Path, utf8: bytes) -> None:
    path = tmp_path / "t.nz"
    content = utf8.decode()
    with nzip.open(path, "wt", encoding="utf-8", level=2) as f:
        f.write(content)
    with nzip.open(path, "rt", encoding="utf-8") as f:
        assert f.read() == content


def test_append_adds_a_member(tmp_path: Path) -> None:
    path = tmp_path / "ab.nz"
    with nzip.open(path, "wb") as f:
        f.write(b"first ")
    with nzip.open(path, "ab", level=1) as f:
        f.write(b"second")
    assert nzip.decompress(path.read_bytes()) == b"first second"


def test_exclusive_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.nz"
    with nzip.open(path, "xb") as f:
        f.write(b"data")
    with pytest.raises(FileExistsError):
        nzip.open(path, "xb")


def test_file_object(text: bytes) -> None:
    buf = io.BytesIO()
    with nzip.NzipFile(buf, "wb", level=1) as f:
        f.write(text)
        assert f.writable() and not f.readable()
    assert not buf.closed
    buf.seek(0)
    with nzip.NzipFile(buf, "rb") as f:
        assert f.readable() and not f.writable()
        assert f.read() == text


def test_errors_on_bad_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        nzip.open(tmp_path / "m.nz", "rw")
    with pytest.raises(ValueError):
        nzip.open(tmp_path / "m.nz", "rb", encoding="utf-8")
    with nzip.open(tmp_path / "m.nz", "wb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.read()
    f.close()
    with pytest.raises(ValueError):
        f.write(b"x")


def test_damaged_file_raises_on_read(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "d.nz"
    path.write_bytes(nzip.compress(text, level=1)[:-30])
    with nzip.open(path, "rb") as f, pytest.raises(nzip.TruncatedDataError):
        f.read()
