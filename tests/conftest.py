"""Shared fixtures: small generated inputs, so the suite needs no external files."""

from __future__ import annotations

import random

import pytest

TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.\n"
)


def sample_text(n: int, seed: int = 0) -> bytes:
    """Pseudo-English of ``n`` bytes: repeated phrases with random word order."""
    rng = random.Random(seed)
    words = TEXT.split()
    out = []
    size = 0
    while size < n:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out).encode()[:n]


@pytest.fixture(scope="session")
def text() -> bytes:
    return sample_text(20000)


@pytest.fixture(scope="session")
def utf8() -> bytes:
    parts = [
        "Grüße aus Köln. ",
        "Здравствуй, мир! ",
        "こんにちは世界。",
        "مرحبا بالعالم ",
        "🙂🚀 ",
        "Ελληνικά κείμενα. ",
    ]
    return ("".join(parts) * 40).encode("utf-8")
