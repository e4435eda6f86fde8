"""Archives made by earlier versions must keep decoding, byte for byte.

If one of these fails, a change altered the format or a model's coded bits:
bump the format version or the model's identifier (keeping the old decoder),
never change what existing archives mean.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nzip

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("archive", sorted(GOLDEN.glob("*.nz")), ids=lambda p: p.name)
def test_golden_archive_decodes(archive: Path) -> None:
    expected = (GOLDEN / (archive.name.split("-v1-")[0] + ".bin")).read_bytes()
    assert nzip.decompress(archive.read_bytes()) == expected


@pytest.mark.parametrize(("level", "model"), [(1, "cm1"), (2, "cm2"), (3, "cm3"), (6, "nn1")])
def test_encoder_still_produces_golden_bytes(level: int, model: str) -> None:
    data = (GOLDEN / "sample.bin").read_bytes()
    assert nzip.compress(data, level=level, frame_size=4096) == (GOLDEN / f"sample-v1-{model}.nz").read_bytes()


def test_encoder_still_produces_golden_lanes() -> None:
    """A frame of about 37 KB: 17 lanes of the neural model, matches across lanes."""
    data = (GOLDEN / "text.bin").read_bytes()
    assert nzip.compress(data, level=6) == (GOLDEN / "text-v1-nn1.nz").read_bytes()
