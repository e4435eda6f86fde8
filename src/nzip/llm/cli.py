"""``nzip model``: import, list, describe and remove stored language models."""

from __future__ import annotations

import argparse
import sys

from ..errors import NzipError
from . import store
from .modelfile import ModelFileError
from .source import UnsupportedModelError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nzip model",
        description="Manage the language models nzip can compress with (stored in $NZIP_MODELS "
        "or the user data directory). Importing reads a Hugging Face folder (config.json, tokenizer.json, "
        "safetensors) or a GGUF file, offline, and writes an integer nzip model file.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    imp = sub.add_parser("import", help="import a Hugging Face folder or a GGUF file")
    imp.add_argument("source", metavar="SOURCE")
    imp.add_argument("--name", help="name to store it under (default: from SOURCE)")
    imp.add_argument("--force", "-f", action="store_true", help="replace a stored model of the same name")
    imp.add_argument("--max-window", type=int, default=2048, metavar="N", help="longest context window (default 2048)")
    sub.add_parser("list", help="list stored models")
    info = sub.add_parser("info", help="describe a stored model")
    info.add_argument("name", metavar="NAME")
    rm = sub.add_parser("remove", help="remove a stored model")
    rm.add_argument("name", metavar="NAME")
    return p


def _line(m: store.StoredModel) -> str:
    size = m.path.stat().st_size
    return (f"{m.name:<20} {m.meta['arch']:<6} {m.parameters / 1e6:8.1f}M {size / 2**20:9.1f} MiB  "
            f"{m.digest.hex()}  {m.info.get('source', '')}")  # fmt: skip


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "import":
            from .importer import import_model

            m = import_model(args.source, args.name, force=args.force, max_window=args.max_window)
            print(f"imported {m.name}: {m.meta['arch']}, {m.parameters / 1e6:.1f}M parameters, "
                  f"{m.meta['vocab']} tokens, digest {m.digest.hex()} -> {m.path}")  # fmt: skip
        elif args.command == "list":
            models = store.list_models()
            if not models:
                print(f"no models in {store.store_dir()} (import one with: nzip model import SOURCE)")
            for m in models:
                print(_line(m))
        elif args.command == "info":
            m = store.describe(args.name)
            meta = m.meta
            rows = [
                ("name", m.name), ("file", str(m.path)), ("digest", m.digest.hex()),
                ("architecture", meta["arch"]), ("parameters", f"{m.parameters / 1e6:.1f}M"),
                ("layers", meta["layers"]), ("hidden", meta["hidden"]), ("intermediate", meta["intermediate"]),
                ("heads", f"{meta['heads']} ({meta['kv_heads']} key/value), head size {meta['head_dim']}"),
                ("vocabulary", f"{meta['vocab']} tokens, {meta['tokenizer']}"),
                ("output embedding", "tied" if meta["tied"] else "separate"),
                ("longest window", meta["max_window"]),
                *[(k, v) for k, v in m.info.items()],
            ]  # fmt: skip
            for key, value in rows:
                print(f"{key + ':':<18} {value}")
        elif args.command == "remove":
            print(f"removed {store.remove(args.name)}")
    except (NzipError, UnsupportedModelError, ModelFileError, OSError) as e:
        print(f"nzip: {e}", file=sys.stderr)
        return 1
    return 0
