"""Start-up: what runs before the first byte is only what the command needs.

Importing numba and the kernels takes about half a second; listing an
archive, ``--help``, an empty input and a stored member need none of it, and
a context-mixing archive does not need the network's modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nzip


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_importing_nzip_loads_no_numeric_libraries() -> None:
    loaded = loaded_after("import nzip, nzip.cli")
    assert "numba" not in loaded and "numpy" not in loaded


def test_listing_help_and_empty_input_load_no_kernels(tmp_path: Path) -> None:
    archive = tmp_path / "a.nz"
    archive.write_bytes(nzip.compress(b"some text " * 50, level=6) + nzip.compress(b"", compact=False))
    code = (
        "import contextlib, io, nzip, nzip.cli\n"
        f"assert nzip.cli.main(['-l', {str(archive)!r}]) == 0\n"
        "assert nzip.compress(b'') == nzip.decompress(nzip.compress(b'')) + nzip.compress(b'')\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    nzip.cli.main(['--help'])"
    )
    loaded = loaded_after(code)
    assert "numba" not in loaded and "numpy" not in loaded


def test_context_mixing_archives_do_not_load_the_network() -> None:
    loaded = loaded_after("import nzip\nd = b'abc ' * 400\nassert nzip.decompress(nzip.compress(d, level=1)) == d")
    assert "nzip.models.cm_kernel" in loaded
    assert "nzip.models.neural" not in loaded and "nzip.nn.engine" not in loaded
