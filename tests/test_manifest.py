"""--manifest: a record of every output, and reruns that skip what is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nzip


def _nzip(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nzip", *args], capture_output=True, cwd=cwd)


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha beta gamma " * 300,
        "sub/b.bin": bytes(range(256)) * 20,
        "sub/deeper/c.txt": b"",
        "d.txt": b"one line\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _entries(path: Path) -> dict[str, dict]:
    return {e["input"]: e for e in map(json.loads, path.read_text().splitlines())}


def test_manifest_records_every_output_and_a_rerun_resumes(tmp_path: Path) -> None:
    files = _tree(tmp_path / "d")
    first = _nzip("-1", "-r", "--manifest", "m.jsonl", "d", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    entries = _entries(tmp_path / "m.jsonl")
    assert len(entries) == len(files)
    for name, data in files.items():
        entry = entries[str(tmp_path / "d" / name)]
        out = tmp_path / "d" / (name + ".nz")
        assert entry["output"] == str(out) and entry["output_size"] == out.stat().st_size
        assert entry["input_size"] == len(data) and entry["model"] in ("cm1", "stored") and entry["level"] == 1
        assert nzip.decompress(out.read_bytes()) == data
    # An interrupted job: one output never written, and the manifest's last line cut short.
    (tmp_path / "d" / "sub" / "b.bin.nz").unlink()
    with open(tmp_path / "m.jsonl", "a") as fp:
        fp.write('{"input": "/nowhere", "outp')
    kept = (tmp_path / "d" / "a.txt.nz").stat().st_mtime_ns
    again = _nzip("-1", "-v", "-r", "--manifest", "m.jsonl", "d", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(b"as in the manifest); skipped") == len(files) - 1
    assert nzip.decompress((tmp_path / "d" / "sub" / "b.bin.nz").read_bytes()) == files["sub/b.bin"]
    assert (tmp_path / "d" / "a.txt.nz").stat().st_mtime_ns == kept
    # An output that no longer matches its entry is not trusted: without -f it is an error.
    (tmp_path / "d" / "d.txt.nz").write_bytes(b"changed")
    changed = _nzip("-1", "-r", "--manifest", "m.jsonl", "d", cwd=tmp_path)
    assert changed.returncode == 1 and b"d.txt.nz already exists" in changed.stderr
    assert _nzip("-1", "-f", "-r", "--manifest", "m.jsonl", "d", cwd=tmp_path).returncode == 0
    assert nzip.decompress((tmp_path / "d" / "d.txt.nz").read_bytes()) == files["d.txt"]


def test_manifest_when_decompressing_and_where_it_does_not_apply(tmp_path: Path) -> None:
    files = _tree(tmp_path / "d")
    assert _nzip("-3", "-r", "--rm", "d", cwd=tmp_path).returncode == 0
    back = _nzip("-d", "-r", "--manifest", "m.jsonl", "d", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    entries = _entries(tmp_path / "m.jsonl")
    assert {e["mode"] for e in entries.values()} == {"decompress"} and len(entries) == len(files)
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data
    for args in (("-d", "-c", "d/a.txt.nz"), ("-t", "d/a.txt.nz")):
        refused = _nzip("--manifest", "m.jsonl", *args, cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1
        assert b"--manifest goes with" in refused.stderr
    assert os.path.exists(tmp_path / "m.jsonl")
