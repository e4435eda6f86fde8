"""Archives made by earlier versions must keep decoding, byte for byte.

If one of these fails, a change altered the format or a model's coded bits:
bump the format version or the model's identifier (keeping the old decoder),
never change what existing archives mean.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nzip
from nzip.codec import Compressor
from nzip.models import NEURAL, NEURAL_V1, NEURAL_V2, model_for_level

GOLDEN = Path(__file__).parent / "golden"
MODELS = {m.name: m for m in (*(model_for_level(level) for level in (1, 2, 3)), NEURAL, NEURAL_V2, NEURAL_V1)}


def _compress(
    data: bytes, model: str, frame_size: int | None = None, compact: bool = False, long_window_log: int | None = None
) -> bytes:
    level = 6 if model.startswith("nn") else int(model[-1])
    c = Compressor(level, frame_size=frame_size, model=MODELS[model], compact=compact, long_window_log=long_window_log)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize("archive", sorted(GOLDEN.glob("*.nz")), ids=lambda p: p.name)
def test_golden_archive_decodes(archive: Path) -> None:
    expected = (GOLDEN / (archive.name.split("-v1-")[0] + ".bin")).read_bytes()
    assert nzip.decompress(archive.read_bytes()) == expected


@pytest.mark.parametrize("model", sorted(MODELS))
def test_encoder_still_produces_golden_bytes(model: str) -> None:
    data = (GOLDEN / "sample.bin").read_bytes()
    assert _compress(data, model, frame_size=4096) == (GOLDEN / f"sample-v1-{model}.nz").read_bytes()


def test_encoder_still_produces_golden_fallback_frames() -> None:
    """Binary records, one frame: nn3 codes them with its level-3 fallback."""
    data = (GOLDEN / "records.bin").read_bytes()
    assert _compress(data, "nn3") == (GOLDEN / "records-v1-nn3.nz").read_bytes()


@pytest.mark.parametrize("model", ["nn1", "nn2", "nn3"])
def test_encoder_still_produces_golden_lanes(model: str) -> None:
    """A frame of about 37 KB: 17 lanes of the neural model, matches across lanes."""
    data = (GOLDEN / "text.bin").read_bytes()
    assert _compress(data, model) == (GOLDEN / f"text-v1-{model}.nz").read_bytes()


COMPACT = [("message", "cm3"), ("message", "nn3"), ("records", "nn3"), ("empty", "cm1")]


@pytest.mark.parametrize(("data", "model"), COMPACT, ids=lambda x: x)
def test_encoder_still_produces_golden_compact_members(data: str, model: str) -> None:
    raw = (GOLDEN / f"{data}.bin").read_bytes()
    packed = _compress(raw, model, compact=True)
    assert packed == (GOLDEN / f"{data}-v1-compact-{model}.nz").read_bytes()
    if data == "records":  # the same payload as the full member's one frame
        full = (GOLDEN / "records-v1-nn3.nz").read_bytes()
        assert packed[-4 - 100 : -4] in full


@pytest.mark.parametrize("model", ["cm1", "cm3", "nn3"])
def test_encoder_still_produces_golden_long_matches(model: str) -> None:
    """Text, records, the text again, in 4 KiB frames: the second text is copied across frames."""
    data = (GOLDEN / "long.bin").read_bytes()
    packed = _compress(data, model, frame_size=4096, long_window_log=20)
    assert packed == (GOLDEN / f"long-v1-{model}.nz").read_bytes()
    assert len(packed) < 0.8 * len(_compress(data, model, frame_size=4096))


def test_default_level_is_the_newest_neural_model() -> None:
    assert model_for_level(nzip.DEFAULT_LEVEL) is NEURAL
