"""Streaming compression and decompression: bytes -> frames -> model -> container.

:class:`Compressor` and :class:`Decompressor` are incremental, in the manner
of :class:`lzma.LZMACompressor` and :class:`bz2.BZ2Decompressor`: feed them
pieces of any size, and they return whatever output is ready.  Frames are
independent, so with ``threads > 1`` several frames are coded at once (the
compiled kernels release the GIL).  The output never depends on the number
of threads.

A member of several frames also carries long matches (docs/FORMAT.md): a
frame's repeats of earlier frames, found within a window of
``2^long_window_log`` bytes by :mod:`nzip.longrange`, are kept as a match
list and only the rest is modelled; decoding puts them back
(:mod:`nzip.matches`).  Pass ``long_window_log=None`` to write members that
nzip 0.1 can read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from . import container as fmt
from . import matches as longfmt
from .errors import CorruptDataError, NotAnArchiveError, NzipError, TruncatedDataError
from .frames import FrameCluster, FrameItem, decode_frame, encode_frame, frames_at_once, map_frames
from .models import DEFAULT_LEVEL, Model, check_level, model_for_level, named_model, resolve


def _frame_log(frame_size: int | None) -> int:
    if frame_size is None:
        return fmt.DEFAULT_FRAME_LOG
    if frame_size <= 0 or frame_size & (frame_size - 1):
        raise ValueError("frame_size must be a power of two")
    log = frame_size.bit_length() - 1
    if not fmt.MIN_FRAME_LOG <= log <= fmt.MAX_FRAME_LOG:
        raise ValueError(f"frame_size must be between 2^{fmt.MIN_FRAME_LOG} and 2^{fmt.MAX_FRAME_LOG}")
    return log


class Compressor:
    """Incremental compressor producing one archive member.

    ``compress(data)`` returns the bytes ready so far (possibly ``b""``);
    ``flush()`` codes what is left, writes the footer and ends the member.
    """

    def __init__(
        self,
        level: int = DEFAULT_LEVEL,
        *,
        frame_size: int | None = None,
        threads: int = 1,
        model: Model | str | None = None,
        compact: bool = True,
        long_window_log: int | None = fmt.DEFAULT_WINDOW_LOG,
        cluster: FrameCluster | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._cluster = cluster
        if long_window_log is not None and not fmt.MIN_WINDOW_LOG <= long_window_log <= fmt.MAX_WINDOW_LOG:
            raise ValueError(f"long_window_log must be between {fmt.MIN_WINDOW_LOG} and {fmt.MAX_WINDOW_LOG}")
        self._window_log = long_window_log or 0
        self._finder = None  # the long-match search, made with the first full frame
        self._level, self._frame_log = level, _frame_log(frame_size)
        self._frame_size = 1 << self._frame_log
        self._threads = threads
        self._compact_wanted = compact
        self._model: Model | None = None
        self._executor: ThreadPoolExecutor | None = None
        if model is not None:
            self._setup(named_model(model) if isinstance(model, str) else model)
        else:
            check_level(level)  # the model itself on first use: an empty input needs none
        self._pending = bytearray()
        self._index: list[tuple[int, int]] = []
        self._total = 0
        self._started = False
        self._finished = False

    def _setup(self, model: Model | None = None) -> Model:
        """The model, its header, and how many frames are coded at once (loading the level's model once)."""
        if self._model is None:
            self._model = model or model_for_level(self._level)
            self._header = fmt.StreamHeader(
                self._model.name, self._model.digest, self._level, self._frame_log, self._window_log
            )
            index = fmt.compact_index(self._model.name, self._model.digest)
            self._compact = index if self._compact_wanted else None
            if self._cluster is not None:
                self._batch = self._cluster.frames_at_once
            else:
                self._batch = frames_at_once(self._threads, self._model.memory_usage(self._frame_size))
                self._executor = ThreadPoolExecutor(self._batch) if self._batch > 1 else None
        return self._model

    def _encode_frame(self, raw: bytes, threads: int = 1, matches=(), residual: bytes = b"") -> bytes:
        assert self._model is not None
        return encode_frame(self._model, raw, threads, matches, residual)

    def _long_matches(self, raws: list[bytes]) -> list[tuple]:
        """Each frame's long matches and residual, found in order (empty when the member has none)."""
        if not self._window_log:
            return [((), b"")] * len(raws)
        if self._finder is None:
            from .longrange import MatchFinder  # numba: only for members of several frames

            self._finder = MatchFinder(self._window_log)
        return [self._finder.add(raw) for raw in raws]

    def _emit(self, out: list[bytes], raws: list[bytes]) -> None:
        self._start(out)
        per_frame = max(1, self._threads // max(1, len(raws)))  # threads left over go inside the frames
        items = list(zip(raws, self._long_matches(raws), strict=True))
        if self._cluster is not None:
            assert self._model is not None
            frames = self._cluster.encode(self._model, [(raw, *found) for raw, found in items], len(self._index))
        else:
            frames = map_frames(self._executor, lambda item: self._encode_frame(item[0], per_frame, *item[1]), items)
        for raw, frame in zip(raws, frames, strict=False):
            out.append(frame)
            self._index.append((len(raw), len(frame) - fmt.FRAME_HEADER_SIZE))
            self._total += len(raw)

    def compress(self, data: bytes) -> bytes:
        """Add ``data``; return the compressed bytes that are ready."""
        if self._finished:
            raise ValueError("compressor already flushed")
        out: list[bytes] = []
        if not data:
            return b""
        self._setup()
        self._pending += data
        batch = self._frame_size * self._batch
        # Strictly more than a batch: an input of one frame is held until flush() can make it compact.
        while len(self._pending) > batch:
            raws = [bytes(self._pending[i : i + self._frame_size]) for i in range(0, batch, self._frame_size)]
            del self._pending[:batch]
            self._emit(out, raws)
        return b"".join(out)

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            out.append(self._header.pack())
            self._started = True

    @staticmethod
    def _empty_member() -> bytes:
        head = fmt.compact_header(fmt.COMPACT_STORED, 0, 0).pack()
        return head + fmt.compact_crc(head, b"").to_bytes(4, "little")

    def _compact_member(self, raw: bytes) -> bytes:
        """The whole input as one compact member (see docs/FORMAT.md)."""
        assert self._compact is not None and self._model is not None
        payload = self._model.encode(raw, self._threads) if raw else None
        model = self._compact
        if payload is None or len(payload) + len(fmt.pack_varint(len(payload))) >= len(raw):
            model, payload = fmt.COMPACT_STORED, raw
        head = fmt.compact_header(model, len(raw), len(payload)).pack()
        return head + payload + fmt.compact_crc(head, raw).to_bytes(4, "little")

    def flush(self) -> bytes:
        """Code all remaining input and end the member; the compressor is then done.

        Input that fits in one frame, coded by a built-in model, becomes a
        compact member; anything else a full one.
        """
        if self._finished:
            raise ValueError("compressor already flushed")
        if self._model is None and self._compact_wanted:  # nothing came: the empty compact member needs no model
            self._finished = True
            return self._empty_member()
        self._setup()
        out: list[bytes] = []
        if not self._started and self._compact is not None and len(self._pending) <= self._frame_size:
            out.append(self._compact_member(bytes(self._pending)))
        else:
            fs = self._frame_size
            if not self._started and len(self._pending) <= fs:  # one frame: nothing to copy from
                self._window_log = 0
                self._header = dataclasses.replace(self._header, window_log=0)
            raws = [bytes(self._pending[i : i + fs]) for i in range(0, len(self._pending), fs)]
            self._emit(out, raws)
            out.append(fmt.Footer(self._total, tuple(self._index)).pack())
        self._pending.clear()
        self._finished = True
        if self._executor is not None:
            self._executor.shutdown()
        return b"".join(out)


class Decompressor:
    """Incremental decompressor for one or more concatenated archive members.

    ``decompress(data)`` returns all output that the input so far allows.
    Call ``finish()`` when the input is exhausted: it raises
    :class:`TruncatedDataError` if the input stopped inside a member.
    """

    def __init__(self, *, threads: int = 1, cluster: FrameCluster | None = None) -> None:
        self._threads = threads
        self._cluster = cluster
        self._batch = threads  # frames decoded at once; set per member from its model and frame size
        self._executor: ThreadPoolExecutor | None = None
        self._buf = bytearray()
        self._offset = 0  # absolute input offset of self._buf[0]
        self._header: fmt.StreamHeader | None = None
        self._model: Model | None = None
        self._window: longfmt.Window | None = None  # a long member's recent output
        self._index: list[tuple[int, int]] = []
        self._total = 0
        self._members = 0
        self._ready = bytearray()  # decoded output not yet returned
        self._stalled = True
        self._gather = False  # see wait_for_batches

    @property
    def eof(self) -> bool:
        """True at the end of a complete member with no unread input."""
        return self._header is None and not self._buf and not self._ready and self._members > 0

    def _consume(self, n: int) -> bytes:
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        self._offset += n
        return chunk

    def _member_kind(self) -> int | None:
        try:
            return fmt.member_kind(self._buf)
        except NotAnArchiveError:
            if self._members:
                raise NotAnArchiveError(
                    f"trailing data at offset {self._offset} after the archive is not an nzip archive"
                ) from None
            raise

    def _compact_member(self) -> bool:
        """Decode a compact member at the front of the buffer; False until it is all there."""
        offset = self._offset
        head = fmt.parse_compact_header(self._buf, offset)
        if head is None or len(self._buf) < head.member_size:
            return False
        header = self._consume(head.size)
        payload = self._consume(head.coded_size)
        crc = int.from_bytes(self._consume(4), "little")
        if head.model == fmt.COMPACT_STORED:
            raw = payload
        else:
            model = resolve(*fmt.COMPACT_MODELS[head.model - 1])
            raw = model.decode(payload, head.raw_size, self._threads)
        if fmt.compact_crc(header, raw) != crc:
            raise CorruptDataError(f"compact member at offset {offset} is corrupt (checksum mismatch)")
        self._ready += raw
        self._members += 1
        return True

    def _decode_frame(self, item: FrameItem, threads: int = 1) -> bytes | tuple[longfmt.LongPayload, bytes]:
        assert self._model is not None
        return decode_frame(self._model, item, threads)

    def _finish_frame(self, item: tuple[fmt.FrameHeader, bytes, int, int], decoded) -> bytes:
        """Apply a long frame's matches, in frame order, and remember the output they may copy."""
        if self._window is None:
            return decoded
        if isinstance(decoded, tuple):
            head, _, index, offset = item
            parsed, residual = decoded
            where = f"frame {index} at offset {offset}"
            longfmt.check_sources(parsed.matches, self._window.end, self._window.size, where)
            decoded = longfmt.rebuild(self._window, parsed.matches, residual)
            if fmt.crc32(decoded) != head.raw_crc:
                raise CorruptDataError(f"{where} is corrupt (checksum mismatch)")
        self._window.append(decoded)
        return decoded

    def _buffered_frames(self, limit: int) -> tuple[int, bool]:
        """(Complete frames at the front of the buffer, up to ``limit``; whether the member's footer follows them)."""
        assert self._header is not None
        pos = count = 0
        while count < limit:
            if len(self._buf) < pos + fmt.FRAME_HEADER_SIZE:
                return count, len(self._buf) > pos and self._buf[pos] == fmt.FRAME_END
            if self._buf[pos] == fmt.FRAME_END:
                return count, True
            where = len(self._index) + count, self._offset + pos
            head = fmt.parse_frame_header(
                self._buf[pos : pos + fmt.FRAME_HEADER_SIZE], self._header.frame_size, *where, self._header.window > 0
            )
            pos += fmt.FRAME_HEADER_SIZE + head.coded_size
            if len(self._buf) < pos:
                return count, False
            count += 1
        return count, False

    def _read_frames(self, limit: int) -> list[tuple[fmt.FrameHeader, bytes, int, int]]:
        """Take up to ``limit`` complete frames from the front of the buffer."""
        assert self._header is not None
        frames = []
        while len(frames) < limit and len(self._buf) >= fmt.FRAME_HEADER_SIZE and self._buf[0] != fmt.FRAME_END:
            index = len(self._index)
            head = fmt.parse_frame_header(
                self._buf, self._header.frame_size, index, self._offset, self._header.window > 0
            )
            if len(self._buf) < fmt.FRAME_HEADER_SIZE + head.coded_size:
                break
            offset = self._offset
            self._consume(fmt.FRAME_HEADER_SIZE)
            frames.append((head, self._consume(head.coded_size), index, offset))
            self._index.append((head.raw_size, head.coded_size))
            self._total += head.raw_size
        return frames

    def wait_for_batches(self, wait: bool) -> None:
        """While ``wait``, start decoding only when a frame per thread is buffered (or the member ends).

        For callers that feed a stream in pieces: decoding whatever frames
        have arrived would mostly start one frame at a time.  Clear it when
        the input has ended, so that the last frames are decoded.
        """
        self._gather = wait

    @property
    def waits_for_batches(self) -> bool:
        return self._gather

    @property
    def needs_input(self) -> bool:
        """False while output can still be produced without more input (see ``max_length``)."""
        return self._stalled and not self._ready

    def decompress(self, data: bytes = b"", max_length: int = -1) -> bytes:
        """Add ``data`` and return decompressed bytes.

        With ``max_length >= 0`` at most that many bytes are returned and no
        more frames are decoded than needed for them; call again with
        ``b""`` while :attr:`needs_input` is False.  This bounds memory to
        about a frame per thread whatever the compression ratio.
        """
        self._buf += data
        while max_length < 0 or len(self._ready) < max_length:
            if not self._step():
                self._stalled = True
                break
        else:
            self._stalled = False
        if max_length < 0 or len(self._ready) <= max_length:
            out = bytes(self._ready)
            self._ready.clear()
        else:
            out = bytes(self._ready[:max_length])
            del self._ready[:max_length]
        return out

    def _step(self) -> bool:
        """Parse one header or footer, or decode a batch of frames; False when input is lacking."""
        if not self._buf:
            return False
        if self._header is None:
            kind = self._member_kind()
            if kind == fmt.MEMBER_COMPACT:
                return self._compact_member()
            if kind is None or len(self._buf) < fmt.HEADER_FIXED_SIZE:
                return False
            size = fmt.header_size(self._buf)
            if len(self._buf) < size:
                return False
            header = fmt.parse_header(self._consume(size))
            self._model = resolve(header.model_name, header.model_digest)
            self._header = header
            self._window = longfmt.Window(header.window) if header.window else None
            self._batch = frames_at_once(self._threads, self._model.memory_usage(header.frame_size))
            if self._cluster is not None:
                self._batch = self._cluster.frames_at_once
            elif self._batch > 1 and self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads)
            self._index = []
            self._total = 0
            return True
        if self._gather and self._batch > 1:
            count, ends = self._buffered_frames(self._batch)
            if count < self._batch and not ends:
                return False  # more input is coming: wait for a whole batch, so that the threads all work
        frames = self._read_frames(self._batch)
        if frames:
            per_frame = max(1, self._threads // len(frames))
            if self._cluster is not None:
                assert self._model is not None
                decoded = self._cluster.decode(self._model, frames)
            else:
                decoded = map_frames(self._executor, lambda item: self._decode_frame(item, per_frame), frames)
            for item, part in zip(frames, decoded, strict=True):
                self._ready += self._finish_frame(item, part)
            return True
        if self._buf[0] != fmt.FRAME_END or len(self._buf) < fmt.FOOTER_HEAD_SIZE:
            return False
        total, count, length = fmt.footer_size(self._buf)
        if count != len(self._index) or total != self._total:
            raise CorruptDataError(
                f"corrupt footer at offset {self._offset}: it lists {count} frames and {total} bytes, "
                f"the archive holds {len(self._index)} frames and {self._total} bytes"
            )
        if len(self._buf) < length:
            return False
        offset = self._offset
        footer = fmt.parse_footer(self._consume(length), offset)
        if list(footer.frames) != self._index:
            raise CorruptDataError(f"corrupt footer at offset {offset}: frame index does not match the frames")
        self._header = None
        self._model = None
        self._window = None
        self._members += 1
        return True

    def finish(self) -> None:
        """Declare the end of input; raise if it ended inside a member."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        if self._members == 0 and self._header is None and not self._buf:
            raise NotAnArchiveError("not an nzip archive (empty input)")
        if self._ready:
            raise ValueError("finish() called before all output was read")
        if self._header is not None or self._buf:
            if self._header is not None:
                where = f"in frame {len(self._index)} or the footer"
            elif bytes(self._buf[: len(fmt.COMPACT_MAGIC)]) == fmt.COMPACT_MAGIC:
                where = "in a compact member"
            else:
                where = "in the stream header"
            raise TruncatedDataError(
                f"archive is truncated: input ends at offset {self._offset + len(self._buf)} {where}"
            )


def compress(
    data: bytes,
    level: int = DEFAULT_LEVEL,
    *,
    frame_size: int | None = None,
    threads: int = 1,
    model: Model | str | None = None,
    compact: bool = True,
    long_window_log: int | None = fmt.DEFAULT_WINDOW_LOG,
    cluster: FrameCluster | None = None,
) -> bytes:
    """Compress ``data`` into a complete nzip archive.

    ``model`` names a language model in the store (``nzip model list``) or
    passes a :class:`~nzip.models.base.Model`; it replaces ``level``'s model.
    Data that fits in one frame becomes a compact member (a few bytes of
    header) unless ``compact`` is False.  Data of several frames carries
    long matches reaching ``2^long_window_log`` bytes back (None: none).
    With ``cluster`` (:class:`nzip.cluster.RayCluster`) the frames are coded
    there; the archive is the same.
    """
    c = Compressor(
        level,
        frame_size=frame_size,
        threads=threads,
        model=model,
        compact=compact,
        long_window_log=long_window_log,
        cluster=cluster,
    )
    return c.compress(data) + c.flush()


def decompress(data: bytes, *, threads: int = 1, cluster: FrameCluster | None = None) -> bytes:
    """Decompress an archive (or several concatenated ones) completely."""
    d = Decompressor(threads=threads, cluster=cluster)
    out = d.decompress(data)
    d.finish()
    return out


def iter_decompress(
    chunks: Iterable[bytes], *, threads: int = 1, piece: int = 1 << 20, cluster: FrameCluster | None = None
) -> Iterator[bytes]:
    """Decompress a sequence of input chunks, yielding output in pieces of at most ``piece`` bytes.

    Memory stays bounded by about one frame per thread plus one input chunk,
    however well the data compressed.
    """
    d = Decompressor(threads=threads, cluster=cluster)

    def drain(data: bytes) -> Iterator[bytes]:
        out = d.decompress(data, piece)
        while out:
            yield out
            out = b"" if d.needs_input else d.decompress(b"", piece)

    d.wait_for_batches(threads > 1 or cluster is not None)
    for chunk in chunks:
        yield from drain(chunk)
    d.wait_for_batches(False)  # the input has ended: decode what is left
    yield from drain(b"")
    d.finish()


__all__ = ["Compressor", "Decompressor", "NzipError", "compress", "decompress", "iter_decompress"]
