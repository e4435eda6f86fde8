"""The benchmark harness: its round trips, and how it checks the default level's targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sample_text
from nzip import bench
from nzip.bench import TEXTS, Result, _targets
from nzip.models import DEFAULT_LEVEL


def _results(fast_packed: int, default_packed: int, seconds: float) -> dict[str, dict[str, Result]]:
    return {
        t: {
            "nzip -3": Result(t, 1000, fast_packed, 0.001, 0.001),
            f"nzip -{DEFAULT_LEVEL}": Result(t, 1000, default_packed, seconds, seconds),
        }
        for t in TEXTS
    }


def test_targets_met() -> None:
    lines = _targets(_results(250, 225, 0.01))  # 10% smaller, 1.8 bits/byte, 100 KB/s
    assert len(lines) == 3
    assert all("NOT met" not in line for line in lines)
    assert "10.0% smaller" in lines[0]


def test_targets_not_met() -> None:
    lines = _targets(_results(250, 240, 0.05))  # 4% smaller, 1.92 bits/byte, 20 KB/s
    assert all("NOT met" in line for line in lines)


def test_targets_need_both_levels() -> None:
    assert _targets({"alice29.txt": {"nzip -1": Result("alice29.txt", 10, 5, 1, 1)}}) == []


def test_bench_runs_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "sample"
    f.write_bytes(sample_text(3000))
    assert bench.main([str(f), "--levels", "1", "--no-baselines"]) == 0
    out = capsys.readouterr().out
    assert "| sample | 3000 |" in out
    assert "all round trips verified" in out


def test_bench_times_whole_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--whole-process`` adds a table of CLI runs (start-up included), each round trip checked."""
    f = tmp_path / "sample"
    f.write_bytes(sample_text(3000))
    assert bench.main([str(f), "--levels", "1", "--no-baselines", "--whole-process"]) == 0
    out = capsys.readouterr().out
    table = out.split("whole nzip processes (start-up included)")[1]
    row = next(line for line in table.splitlines() if line.startswith("| sample |"))
    compress, decompress = (float(x) for x in row.split("|")[2].split("/"))
    assert 0 < compress < 1e5 and 0 < decompress < 1e5  # KB/s of a process that must start Python


def test_a_failing_baseline_is_reported_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(c: bytes, n: int) -> bytes:
        if n > 2000:
            raise ValueError("decoder gave up")  # as pyppmd does on some binary inputs
        return c

    monkeypatch.setattr(bench, "_baselines", lambda: ({"broken": (lambda d: d, broken)}, []))
    (tmp_path / "a").write_bytes(b"a" * 3000)
    (tmp_path / "b").write_bytes(b"b" * 1000)
    assert bench.main([str(tmp_path), "--levels", "1"]) == 0
    out = capsys.readouterr().out
    assert "| a | 3000 |" in out and "| fails |" in out
    assert "| b | 1000 |" in out
    assert "round trip failed: a: broken: ValueError: decoder gave up" in out
    assert "8.000*" in out  # the total over the file that passed, marked
    assert "all nzip round trips verified" in out


def _plot_results() -> dict[str, dict[str, Result]]:
    return {
        "a.txt": {"nzip -6": Result("a.txt", 1000, 220, 0.02, 0.02), "gzip -9": Result("a.txt", 1000, 350, 0.0001, 0)},
        "b.bin": {"nzip -6": Result("b.bin", 3000, 900, 0.06, 0.05), "gzip -9": Result("b.bin", 3000, 1200, 0.0002, 0)},
    }


def test_plot_totals_are_bytes_over_bytes() -> None:
    from nzip.bench_plot import totals

    t = totals(_plot_results())
    assert t["nzip -6"][0] == pytest.approx(8 * 1120 / 4000)
    assert t["nzip -6"][1] == pytest.approx(4000 / 0.08 / 1e6)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_a_valid_file(tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("matplotlib")
    from nzip.bench_plot import plot

    out = tmp_path / f"bench{suffix}"
    plot(_plot_results(), out, per_file=True)
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    else:
        import xml.etree.ElementTree as ET

        assert ET.fromstring(data).tag.endswith("svg")
        assert b"nzip -6" in data and b"gzip -9" in data
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left


def test_plot_refuses_an_unknown_format(tmp_path: Path) -> None:
    from nzip.bench_plot import plot

    with pytest.raises(ValueError, match="PNG or SVG"):
        plot(_plot_results(), tmp_path / "bench.jpg")
    assert bench.main(["--plot", str(tmp_path / "bench.gif"), "--no-baselines", str(tmp_path)]) == 1


def test_bench_plot_from_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    sample = tmp_path / "in" / "sample.txt"
    sample.parent.mkdir()
    sample.write_bytes(sample_text(4000))
    out = tmp_path / "plot.png"
    assert bench.main(["--levels", "1", "--no-baselines", "--plot", str(out), "--plot-files", str(sample.parent)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert f"plot: {out}" in capsys.readouterr().out
