"""``nzip explain``: per-byte costs that add up to the archive, and a page that renders."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nzip
from conftest import sample_text
from nzip.explain import VIEW_LIMIT, costliest, explain, profile
from nzip.explain_page import is_text, render
from nzip.info import scan
from nzip.models import NEURAL, model_for_level
from nzip.models import trace_kernel as tk

FRAME = 4096
GOLDEN = Path(__file__).parent / "golden"


def archive_payloads(data: bytes, level: int, frame_size: int) -> list[int]:
    """Coded size of every frame of the full member nzip writes."""
    packed = nzip.compress(data, level=level, frame_size=frame_size, compact=False)
    return [coded for _, _, coded in scan(io.BytesIO(packed))[0].frames]


@pytest.mark.parametrize("level", [1, 2, 3, 6])
def test_costs_add_up_to_the_archive(level: int) -> None:
    data = sample_text(3 * FRAME + 500, seed=level) + bytes(range(256)) * 4
    report = explain("x", data, model_for_level(level), level, FRAME)
    assert report.costs.shape == (len(data), tk.FIELDS)
    assert [size for _, size, _, _ in report.frames] == [FRAME, FRAME, FRAME, len(data) - 3 * FRAME]
    assert [min(p, s) for _, s, p, _ in report.frames] == archive_payloads(data, level, FRAME)
    for start, size, payload, _ in report.frames:
        bits = report.costs[start : start + size, tk.FINAL].sum()
        assert -24 <= 8 * payload - bits <= 16, (start, payload, bits)  # the coder's termination, the lanes byte
    assert (report.costs[:, tk.FINAL] > 0).all()
    assert report.column("match_bits").max() <= 8
    network = report.column("network")
    assert np.isnan(network).all() == (level < 4)


def test_a_frame_level_3_codes_better_is_explained_as_level_3() -> None:
    data = (GOLDEN / "records.bin").read_bytes()
    traced = NEURAL.trace(data)
    assert traced is not None and traced.coded_by == "cm3"
    assert traced.payload == len(NEURAL.encode(data))
    assert np.isnan(traced.costs[:, tk.NETWORK]).all()


def test_tracing_leaves_the_coded_bits_alone() -> None:
    data = sample_text(5000, seed=3)
    before = nzip.compress(data, level=6)
    NEURAL.trace(data)
    model_for_level(3).trace(data)
    assert nzip.compress(data, level=6) == before


def test_the_network_saves_bits_on_text() -> None:
    data = sample_text(8000, seed=5)
    report = explain("t", data, NEURAL, 6)
    assert np.nansum(report.column("saved_network")) > 0
    assert report.column("saved_contexts").sum() > 0


def test_costliest_regions_do_not_overlap() -> None:
    costs = np.zeros(1000)
    costs[100:110] = 5
    costs[500:520] = 3
    costs[530] = 50
    regions = costliest(costs, width=64, count=5)
    assert regions[0][0] <= 530 < regions[0][0] + 64 and regions[0][1] >= 50
    starts = sorted(s for s, _ in regions)
    assert all(b - a >= 64 for a, b in itertools.pairwise(starts))
    assert len(profile(costs, bins=10)) == 10 and profile(costs[:3], bins=10) == [0.0, 0.0, 0.0]


def page_data(page: str) -> dict:
    match = re.search(r'<script id="report" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_page_is_self_contained_and_carries_every_shown_byte() -> None:
    data = "Grüße, мир! ".encode() * 50 + sample_text(3000)
    report = explain("u.txt", data, model_for_level(3), 3)
    page = render(report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "@import" not in page
    d = page_data(page)
    assert d["text"] and d["shown"] == len(data)
    assert base64.b64decode(d["bytes"]) == data
    final = np.frombuffer(base64.b64decode(d["cols"]["final"]), dtype="<i2") / 256
    assert abs(final.sum() - report.total_bits) < len(data) / 256
    assert d["summary"]["payload"] == report.payload


def test_binary_is_shown_as_hex_and_large_files_are_cut() -> None:
    assert not is_text(os.urandom(4000) + bytes(100))
    assert is_text("naïve café\n".encode() * 10)
    big = bytes(range(256)) * (VIEW_LIMIT // 256 + 40)
    d = page_data(render(explain("b.bin", big, model_for_level(1), 1)))
    assert not d["text"] and d["shown"] == VIEW_LIMIT and len(d["profile"]) == 1000


def test_diff_compares_two_models() -> None:
    data = sample_text(6000, seed=9)
    a = explain("t", data, NEURAL, 6)
    b = explain("t", data, model_for_level(1), 1)
    d = page_data(render(a, b))
    assert d["summary"]["other"]["model"] == "cm1"
    assert sum(d["wins"]) <= len(data) and d["wins"][0] > d["wins"][1]
    assert len(d["profileOther"]) == len(d["profile"])


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nzip", "explain", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_writes_the_page_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(sample_text(2000))
    r = run("-l", "1", "a.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bits/byte" in r.stderr and (tmp_path / "a.txt.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    r = run("-l", "1", "a.txt", cwd=tmp_path)
    assert r.returncode == 1 and "already exists" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run("-l", "3", "--diff", "1", "-o", "d.html", "a.txt", cwd=tmp_path)
    assert r.returncode == 0 and "cm1" in r.stderr and (tmp_path / "d.html").is_file()
    for args, message in [
        (("missing.txt",), "No such file"),
        (("-l", "12", "a.txt", "-o", "x.html"), "level must be"),
        (("-m", "no-such-model", "a.txt", "-o", "x.html"), "no-such-model"),
    ]:
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 1 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium: install Debian's chromium to check the page renders")
def test_page_renders_in_a_real_browser(tmp_path: Path) -> None:
    data = "Grüße, мир!\n".encode() * 20 + sample_text(1500)
    page = tmp_path / "p.html"
    page.write_text(render(explain("p.txt", data, model_for_level(3), 3)), encoding="utf-8")
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    characters = len(data.decode("utf-8"))
    assert f'data-bytes="{len(data)}"' in dom.stdout and f'data-spans="{characters}"' in dom.stdout
    assert dom.stdout.count('class="b"') == characters
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()], capture_output=True, timeout=120
    )
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
