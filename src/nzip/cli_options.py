"""The command line's options: what ``nzip --help`` shows, and how sizes are read."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from . import __version__
from .container import DEFAULT_WINDOW_LOG, MAX_WINDOW_LOG, MIN_WINDOW_LOG
from .models import DEFAULT_LEVEL

PROG = "nzip"


def size_text(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it (e.g. "256 MiB")."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with status 1, like every other nzip error (and gzip, zstd)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Compress or decompress FILEs with nzip (model-driven lossless compression). "
        "With no FILE, or when FILE is -, read standard input and write standard output.",
        epilog="Levels: 1-3 context mixing (1 fastest, MB/s); 4-9 add the built-in neural model "
        "(strongest, tens of KB/s; all the same model in this version). "
        f"Default level: {DEFAULT_LEVEL}. "
        "Also: 'nzip model import|list|info|remove' manages language models, "
        "'nzip bench [FILES]' runs the benchmark harness, "
        "'nzip explain FILE' writes an HTML page of where the bits go.",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "-z", "--compress", dest="mode", action="store_const", const="compress", help="compress (default)"
    )
    mode.add_argument(
        "-d", "--decompress", "--uncompress", dest="mode", action="store_const", const="decompress", help="decompress"
    )
    mode.add_argument("-t", "--test", dest="mode", action="store_const", const="test", help="test archive integrity")
    mode.add_argument("-l", "--list", dest="mode", action="store_const", const="list", help="list archive contents")
    for level in range(1, 10):
        p.add_argument(f"-{level}", dest="level", action="store_const", const=level, help=argparse.SUPPRESS)
    p.add_argument(
        "--level",
        type=int,
        dest="level",
        metavar="N",
        help=f"compression level 1-9 (also -1 .. -9; default {DEFAULT_LEVEL})",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="compress with a language model from the model store instead of a level's model "
        "(see 'nzip model list'); decompression finds the model from the archive",
    )
    p.add_argument(
        "--engine",
        metavar="NAME",
        help="what runs language models: numpy (default), torch (CPU, faster; needs PyTorch), cuda; "
        "the archive is the same whichever runs",
    )
    p.add_argument("-c", "--stdout", action="store_true", help="write to standard output, keep input files")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the result to FILE (one input only)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs; write to a terminal")
    p.add_argument("-k", "--keep", action="store_true", help="keep input files (default)")
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="operate on every file below directory operands (symbolic links are not followed)",
    )
    p.add_argument(
        "--rm", action="store_true", help="remove each input file after success (its archive is verified first)"
    )
    p.add_argument(
        "--salvage",
        action="store_true",
        help="with -d: write every intact frame of a damaged archive (lost frames become zeros), list the damage",
    )
    p.add_argument(
        "-T",
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="threads (default 0: one per core; 1: one core); the archive is the same for every N",
    )
    p.add_argument(
        "--frame-size",
        type=size_arg,
        default=None,
        metavar="SIZE",
        help="frame size, a power of two such as 1M or 16M (default 8M)",
    )
    p.add_argument(
        "--long",
        type=int,
        default=DEFAULT_WINDOW_LOG,
        metavar="N",
        help=f"long matches reach 2^N bytes back across frames ({MIN_WINDOW_LOG}-{MAX_WINDOW_LOG}, "
        f"default {DEFAULT_WINDOW_LOG}: {size_text(1 << DEFAULT_WINDOW_LOG)}); decoding keeps that much",
    )
    p.add_argument(
        "--no-long",
        dest="long",
        action="store_const",
        const=None,
        help="no long matches (archives that nzip 0.1 can read)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="code the frames on a Ray cluster: 'auto' (a running one), 'local' (start one here), "
        "or an address such as ray://head:10001; the archive is the same (needs nzip[ray])",
    )
    p.add_argument(
        "--manifest",
        metavar="FILE",
        help="record every output written (JSON lines: paths, sizes, SHA-256, model) in FILE, and skip "
        "inputs that FILE says are done and whose outputs still match: an interrupted job resumes",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="report sizes and speed for each file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display or reports")
    p.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    p.set_defaults(mode="compress", level=DEFAULT_LEVEL, cluster=None, ahead=None)
    return p


def size_arg(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().rstrip("ib")
    mult = units.get(t[-1:], 1)
    try:
        value = int(t[:-1] if t[-1:] in units else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r}") from None
    return value
