"""Build the two long-range test inputs of docs/DESIGN.md ("Long matches") from the corpus.

``tarball.bin``: a "tarball of two releases" -- a 7.5 MB source file, a
4.3 MB one, then the first again (19.2 MB).  ``repeats.bin``: 1.84 MB of
JSON repeated 16 times (29.4 MB), data whose repeats lie beyond any frame.

    python tools/make_long_inputs.py ../shared/corpus /tmp/long
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(corpus: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    first = (corpus / "code" / "python_00.txt").read_bytes()
    second = (corpus / "code" / "rust_00.txt").read_bytes()
    (out / "tarball.bin").write_bytes(first + second + first)
    unit = (corpus / "data" / "json_00.txt").read_bytes()[:1_840_000]
    (out / "repeats.bin").write_bytes(unit * 16)
    for name in ("tarball.bin", "repeats.bin"):
        print(f"{out / name}: {(out / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
