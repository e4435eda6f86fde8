"""The ``nzip`` command line, following the conventions of zstd, xz and gzip.

Safety rules: the input is kept unless ``--rm`` is given (and then removed
only after the output was written, synced and verified); outputs are written
to a temporary file in the destination directory and renamed into place, so
an error or an interrupt never leaves a partial file; existing files are not
overwritten without ``--force``.  Every user error is one line on stderr and
exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import mmap
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

from ._write import CheckedOutput, OutputError
from .cli_options import PROG, build_parser, size_text
from .codec import Compressor, iter_decompress
from .container import DEFAULT_FRAME_LOG, MAX_WINDOW_LOG, MIN_WINDOW_LOG
from .errors import NzipError
from .info import scan
from .models import check_level, named_model
from .recover import Damage, salvage
from .tree import operands

SUFFIX = ".nz"
_CHUNK = 1 << 20


# Temporary outputs being written, so that an interrupt can remove them.
_pending_outputs: set[str] = set()
_pending_lock = threading.Lock()


class UserError(Exception):
    """A problem with one operand, reported in one line."""


class DamagedArchive(Exception):
    """An archive with damaged parts; each is reported on its own line."""

    def __init__(self, damages: list[Damage]) -> None:
        super().__init__(f"{len(damages)} damaged part(s)")
        self.damages = damages


class Progress:
    """A one-line progress display on stderr, shown only when stderr is a terminal."""

    def __init__(self, name: str, enabled: bool, total: int | None) -> None:
        self.name = name
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total
        self.start = time.monotonic()
        self.shown = False

    def update(self, read: int, raw: int, packed: int) -> None:
        """``read`` bytes of the input consumed; ``raw`` and ``packed`` bytes so far."""
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        if elapsed < 0.5:
            return
        pct = f" {100 * read / self.total:3.0f}%" if self.total else ""
        ratio = f", ratio {100 * packed / raw:.1f}%" if raw else ""
        sys.stderr.write(f"\r{self.name}:{pct} {raw / 2**20:.1f} MiB, {_speed(raw, elapsed)}{ratio} ")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _read_chunks(fp: IO[bytes], size: int = _CHUNK) -> Iterator[bytes]:
    while chunk := fp.read(size):
        yield chunk


def compress_stream(src: IO[bytes], dst: IO[bytes], args: argparse.Namespace, progress: Progress) -> tuple[int, int]:
    """Compress ``src`` into ``dst``; return (bytes in, bytes out)."""
    frame_size = args.frame_size
    comp = Compressor(
        args.level,
        threads=args.threads,
        frame_size=frame_size,
        model=args.model,
        long_window_log=args.long,
        cluster=args.cluster,
    )
    n_in = n_out = 0
    for chunk in _read_chunks(src):
        out = comp.compress(chunk)
        n_in += len(chunk)
        if out:
            dst.write(out)
            n_out += len(out)
        progress.update(n_in, n_in, n_out)
    out = comp.flush()
    dst.write(out)
    return n_in, n_out + len(out)


def decompress_stream(
    src: IO[bytes], dst: IO[bytes] | None, args: argparse.Namespace, progress: Progress
) -> tuple[int, int]:
    """Decompress ``src`` into ``dst`` (or only verify when ``dst`` is None); return (bytes in, bytes out)."""
    n_in = n_out = 0

    def chunks() -> Iterator[bytes]:
        nonlocal n_in
        for chunk in _read_chunks(src):
            n_in += len(chunk)
            yield chunk

    for out in iter_decompress(chunks(), threads=args.threads, cluster=args.cluster):
        if dst is not None:
            dst.write(out)
        n_out += len(out)
        progress.update(n_in, n_out, n_in)
    return n_in, n_out


@contextlib.contextmanager
def atomic_output(path: str, force: bool, like: str | None) -> Iterator[CheckedOutput]:
    """Write to a temporary file beside ``path`` and move it into place on success only.

    The file is flushed and fsynced before the rename and the directory after
    it, so neither an error, a kill nor a power loss leaves a partial file
    under ``path``; every failure is an :class:`OutputError` naming ``path``.
    """
    if os.path.lexists(path) and not force:
        raise UserError(f"{path} already exists; not overwritten (use -f to overwrite)")
    directory = os.path.dirname(os.path.abspath(path))
    with _pending_lock:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror}") from None
        _pending_outputs.add(tmp)
    try:
        fp = os.fdopen(fd, "wb")
        try:
            out = CheckedOutput(fp, path)
            yield out
            out.sync()
        except BaseException:
            # Closing flushes what is still buffered, which fails again on a
            # full disk; the first error is the one to report.
            with contextlib.suppress(OSError):
                fp.close()
            raise
        try:
            fp.close()
        except OSError as exc:
            raise OutputError(path, exc) from None
        if like is not None:
            with contextlib.suppress(OSError):
                shutil.copystat(like, tmp)
        with _pending_lock:
            if not force and os.path.lexists(path):
                raise UserError(f"{path} already exists; not overwritten (use -f to overwrite)")
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputError(path, exc) from None
            _pending_outputs.discard(tmp)
        _sync_directory(directory, path)
    except BaseException:
        with _pending_lock:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            _pending_outputs.discard(tmp)
        raise


def _sync_directory(directory: str, path: str) -> None:
    """fsync ``directory`` so that a rename into it survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform or file system can open a directory
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise OutputError(path, exc) from None
    finally:
        os.close(fd)


def _stdout() -> CheckedOutput:
    return CheckedOutput(sys.stdout.buffer, "stdout")


def _output_name(path: str, args: argparse.Namespace) -> str:
    if args.output:
        return args.output
    if args.mode == "compress":
        if path.endswith(SUFFIX):
            raise UserError(f"already has the {SUFFIX} suffix; ignored")
        return path + SUFFIX
    if not path.endswith(SUFFIX) or len(path) == len(SUFFIX):
        raise UserError(f"unknown suffix (expected {SUFFIX}); use -o or -c")
    return path[: -len(SUFFIX)]


def _verify_archive(path: str, threads: int) -> None:
    with open(path, "rb") as fp:
        for _ in iter_decompress(_read_chunks(fp), threads=threads):
            pass


def _speed(size: int, seconds: float) -> str:
    """``size`` bytes in ``seconds`` as MB/s, or KB/s below 1 MB/s (the neural levels)."""
    rate = size / seconds if seconds > 0 else 0.0
    return f"{rate / 1e6:.2f} MB/s" if rate >= 1e6 else f"{rate / 1e3:.1f} KB/s"


def _report(args: argparse.Namespace, name: str, n_in: int, n_out: int, seconds: float) -> None:
    if args.quiet or not (args.verbose or sys.stderr.isatty()):
        return
    raw, packed = (n_in, n_out) if args.mode == "compress" else (n_out, n_in)
    pct = 100 * packed / raw if raw else 100.0
    bpb = 8 * packed / raw if raw else 0.0
    print(f"{name}: {raw} -> {packed} bytes ({pct:.2f}%, {bpb:.3f} bits/byte), {_speed(raw, seconds)}", file=sys.stderr)


@contextlib.contextmanager
def _whole_archive(path: str) -> Iterator[bytes | mmap.mmap]:
    """The archive at ``path`` (or stdin) with random access: memory-mapped when it is a file."""
    if path == "-":
        yield sys.stdin.buffer.read()
        return
    with open(path, "rb") as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            yield b""
            return
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mapped
        finally:
            # Views into the map may outlive an exception's traceback; then the
            # map is closed when they are collected.
            with contextlib.suppress(BufferError):
                mapped.close()


def test_file(path: str, args: argparse.Namespace) -> None:
    """``-t``: check every frame of a file, reporting each damaged one."""
    out_size = 0

    def count(data: bytes) -> None:
        nonlocal out_size
        out_size += len(data)

    with _whole_archive(path) as blob:
        damages = salvage(blob, count)
    if damages:
        raise DamagedArchive(damages)
    if args.verbose:
        print(f"{path}: OK ({out_size} bytes)", file=sys.stderr)


def salvage_file(path: str, args: argparse.Namespace) -> None:
    """``-d --salvage``: write every intact frame, zeros for lost ones, and report the damage."""
    with _whole_archive(path) as blob:
        if path == "-" or args.stdout:
            out = _stdout()
            damages = salvage(blob, out.write)
            out.flush()
        else:
            with atomic_output(_output_name(path, args), args.force, path) as dst:
                damages = salvage(blob, dst.write)
    if damages:
        raise DamagedArchive(damages)


def process_file(path: str, args: argparse.Namespace) -> None:
    """Compress, decompress or test one operand (``-`` is stdin)."""
    stdin = path == "-"
    name = "stdin" if stdin else path
    if not stdin:
        if os.path.isdir(path):
            raise UserError("is a directory; ignored (-r takes the files below it)")
        if not os.path.exists(path):
            raise UserError("no such file")
    if args.mode == "test" and not stdin and args.cluster is None:
        return test_file(path, args)
    if args.mode == "decompress" and args.salvage:
        return salvage_file(path, args)
    total = None if stdin else os.path.getsize(path)
    progress = Progress(name, not args.quiet, total)
    run = compress_stream if args.mode == "compress" else decompress_stream
    packed = args.ahead.take(path) if args.ahead is not None and not stdin else None
    if packed is not None:  # compressed on the cluster already (a small file, sent ahead)

        def run(src: IO[bytes], dst: IO[bytes], args: argparse.Namespace, progress: Progress) -> tuple[int, int]:
            dst.write(packed)
            return os.path.getsize(path), len(packed)

    started = time.monotonic()
    src_cm = contextlib.nullcontext(sys.stdin.buffer) if stdin else open(path, "rb")
    try:
        with src_cm as src:
            if args.mode == "test":
                n_in, n_out = decompress_stream(src, None, args, progress)
                progress.clear()
                if args.verbose:
                    print(f"{name}: OK ({n_out} bytes)", file=sys.stderr)
                return
            if stdin or args.stdout:
                out = _stdout()
                n_in, n_out = run(src, out, args, progress)  # type: ignore[arg-type]
                out.flush()
            else:
                out_path = _output_name(path, args)
                if args.manifest is not None and args.manifest.done(path, out_path):
                    if args.verbose:
                        print(f"{name}: done before ({out_path} as in the manifest); skipped", file=sys.stderr)
                    return
                with atomic_output(out_path, args.force, path) as dst:
                    n_in, n_out = run(src, dst, args, progress)
                if args.rm and args.mode == "compress":
                    _verify_archive(out_path, args.threads)
                if args.manifest is not None:
                    _record(args, path, out_path)
                if args.rm:
                    os.unlink(path)
    finally:
        progress.clear()
    _report(args, name, n_in, n_out, time.monotonic() - started)


def _record(args: argparse.Namespace, path: str, out_path: str) -> None:
    """Add a finished output to the manifest, with the models its archive names."""
    archive = out_path if args.mode == "compress" else path
    with open(archive, "rb") as fp:
        models = ",".join(dict.fromkeys(m.model_name for m in scan(fp)))
    how = {"mode": args.mode, "model": models}
    if args.mode == "compress":
        how["level"] = args.level
    args.manifest.record(path, out_path, **how)


def list_file(path: str, args: argparse.Namespace, totals: list[int]) -> None:
    """Print one line of ``--list`` output for ``path``."""
    src_cm = contextlib.nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb")
    with src_cm as fp:
        members = scan(fp)
    packed = sum(m.compressed_size for m in members)
    raw = sum(m.raw_size for m in members)
    frames = sum(len(m.frames) for m in members)
    stored = sum(m.stored_frames for m in members)
    models = ",".join(dict.fromkeys(m.model_name for m in members))
    ratio = f"{100 * packed / raw:7.2f}%" if raw else "      -"
    bpb = f"{8 * packed / raw:6.3f}" if raw else "     -"
    print(f"{packed:>12} {raw:>12} {ratio} {bpb} {models:>6} {frames:>6} {stored:>6}  {path}")
    if args.verbose:
        for i, m in enumerate(members):
            if m.compact:
                digest = f" ({m.model_digest.hex()})" if m.model_digest else ""
                print(f"    member {i}: compact, model {m.model_name}{digest}")
                continue
            window = ""
            if m.window:
                window = f", long matches within {size_text(m.window)} ({m.long_frames} frames use them)"
            print(
                f"    member {i}: model {m.model_name} ({m.model_digest.hex()}), "
                f"level {m.level}, frame size {m.frame_size}{window}"
            )
    totals[0] += packed
    totals[1] += raw


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _skipped(args: argparse.Namespace) -> Callable[[str, str], None]:
    """What ``-r`` says of a file it passes over: a warning (not an error, as with gzip), unless ``-q``."""

    def warn(path: str, reason: str) -> None:
        if not args.quiet:
            _error(f"{path}: {reason}")

    return warn


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nzip`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["model"]:
        from .llm.cli import main as model_main

        return model_main(argv[1:])
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["explain"]:
        from .explain import main as explain_main

        return explain_main(argv[1:])
    args = build_parser().parse_args(argv)
    return _run_interruptible(args)


class _Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    raise _Interrupted(signum)


def _run_interruptible(args: argparse.Namespace) -> int:
    """Run the work in a thread so that SIGINT and SIGTERM are handled at once.

    A compiled kernel may code a frame for many seconds without returning to
    the interpreter; the main thread stays free to receive signals, removes
    any temporary output, and exits with 128 + the signal number, as shells
    expect.  The input is never touched.
    """
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["status"] = _run(args)
        except BrokenPipeError:
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")
            outcome["status"] = 1
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, _on_signal)
    worker = threading.Thread(target=work, name="nzip-worker", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
    except _Interrupted as stop:
        _pending_lock.acquire()  # held until exit: no output may be renamed into place now
        for tmp in _pending_outputs:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _error("interrupted")
        sys.stderr.flush()
        if args.cluster is not None:  # stop a cluster this run started; Ray ends the tasks of an exiting driver
            with contextlib.suppress(Exception):
                args.cluster.close()
        os._exit(128 + stop.signum)
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return int(outcome.get("status", 1))  # type: ignore[call-overload]


def _cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _run(args: argparse.Namespace) -> int:
    if args.threads == 0:
        args.threads = _cores()
    if args.threads < 0:
        _error("--threads must be 0 or more")
        return 1
    try:
        check_level(args.level)
        if args.engine:
            from .llm.store import set_default_engine

            set_default_engine(args.engine)
        if args.model is not None and args.mode == "compress":
            args.model = named_model(args.model)
        if args.long is not None and not MIN_WINDOW_LOG <= args.long <= MAX_WINDOW_LOG:
            raise ValueError(f"--long must be between {MIN_WINDOW_LOG} and {MAX_WINDOW_LOG}")
        if args.frame_size is not None:
            Compressor(args.level, frame_size=args.frame_size)
    except (ValueError, NzipError) as exc:
        _error(str(exc))
        return 1
    files = list(operands(args.files or ["-"], args.recursive, args.mode != "compress", SUFFIX, _skipped(args)))
    if args.output and len(files) > 1:
        _error("-o takes a single input file")
        return 1
    if args.mode == "list":
        print(f"{'compressed':>12} {'raw':>12} {'ratio':>8} {'bpb':>6} {'model':>6} {'frames':>6} {'stored':>6}  name")
        totals = [0, 0]
        status = 0
        for path in files:
            try:
                list_file(path, args, totals)
            except (NzipError, OSError) as exc:
                _error(f"{path}: {_describe(exc)}")
                status = 1
        if len(files) > 1:
            print(f"{totals[0]:>12} {totals[1]:>12} {'':>8} {'':>6} {'':>6} {'':>6} {'':>6}  (total)")
        return status
    writes_stdout = args.mode != "test" and ("-" in files or args.stdout) and not args.output
    if writes_stdout and args.mode == "compress" and sys.stdout.isatty() and not args.force:
        _error("refusing to write compressed data to a terminal (use -f to force)")
        return 1
    if "-" in files and args.mode != "compress" and sys.stdin.isatty() and not args.force:
        _error("refusing to read compressed data from a terminal (use -f to force)")
        return 1
    if args.salvage and (args.mode != "decompress" or args.rm):
        _error("--salvage goes with -d and without --rm")
        return 1
    if args.manifest is not None:
        if args.mode not in ("compress", "decompress") or args.stdout or args.salvage or "-" in files:
            _error("--manifest goes with compressing or decompressing files to files")
            return 1
        from .manifest import Manifest

        try:
            args.manifest = Manifest(args.manifest)
        except OSError as exc:
            _error(f"{args.manifest}: {_describe(exc)}")
            return 1
    if args.ray:
        from .cluster import RayCluster  # Ray only when asked for

        try:
            args.cluster = RayCluster(args.ray)
        except NzipError as exc:
            _error(str(exc))
            return 1
    try:
        if args.cluster is not None and args.mode == "compress" and not args.stdout and len(files) > 1:
            args.ahead = _files_ahead(files, args)
        return _process_all(files, args)
    finally:
        if args.cluster is not None:
            args.cluster.close()
        if args.manifest is not None:
            args.manifest.close()


def _files_ahead(files: list[str], args: argparse.Namespace) -> object:
    """Small files compressed on the cluster a few at a time ahead of writing (nzip.cluster.files)."""
    from .cluster.files import AheadFiles, small_file

    is_small = small_file(args.frame_size or 1 << DEFAULT_FRAME_LOG)

    def wanted(path: str) -> bool:
        if not is_small(path):
            return False
        try:
            return args.manifest is None or not args.manifest.done(path, _output_name(path, args))
        except UserError:
            return False

    return AheadFiles(
        args.cluster, files, wanted, args.level, args.model, frame_size=args.frame_size, long_window_log=args.long
    )


def _process_all(files: list[str], args: argparse.Namespace) -> int:
    status = 0
    for path in files:
        name = "stdin" if path == "-" else path
        try:
            process_file(path, args)
        except OutputError as exc:
            _error(str(exc))
            status = 1
            if exc.output == "stdout":
                _silence_stdout()
                break  # later operands would go to the same failed output
        except DamagedArchive as exc:
            for damage in exc.damages:
                _error(f"{name}: {damage}")
            status = 1
        except (NzipError, UserError, OSError) as exc:
            _error(f"{name}: {_describe(exc)}")
            status = 1
    return status


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the exit-time flush of a failed stdout stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
