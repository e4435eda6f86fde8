"""Tokens and bytes: the token-to-bytes table and an encoder for arbitrary bytes.

A language model predicts tokens, but an archive must reproduce bytes, any
bytes.  Two rules make that safe:

* The **decoder never tokenizes**.  Each token has a fixed byte string (the
  table built at import from the tokenizer's vocabulary), and decoding is
  concatenation.
* The **encoder may tokenize however it likes**, as long as the tokens'
  bytes concatenate to the frame; it checks that before coding.  Matching
  the model's own tokenization only makes the archive smaller.

The encoder follows the model's tokenizer where it can: valid UTF-8 text is
split by the pre-tokenizer's pattern and merged by the BPE merge ranks;
bytes that are not valid UTF-8 (or text the vocabulary cannot spell) become
single-byte tokens, which byte-level BPE (GPT-2's alphabet) and SentencePiece
byte fallback (``<0xNN>``) both have.  Special tokens are never matched in
the input: ``<|endoftext|>`` in a file is just text.  Normalizers (NFC,
prefix spaces) are not applied, since they would change the bytes.

Patterns use Python's :mod:`re`, which lacks ``\\p{..}``; :func:`translate_pattern`
rewrites the common Unicode classes into equivalents built from ``\\w`` and
``\\d``.  Where the two differ (rare scripts and numerals) only the
compression ratio can suffer, never correctness.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

BYTE_LEVEL = "byte-level"
SENTENCEPIECE = "sentencepiece"
SP_SPACE = "\u2581"

#: GPT-2's pre-tokenizer (what ``ByteLevel(use_regex=True)`` applies).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: Llama 3's and Qwen2's patterns (GGUF ``tokenizer.ggml.pre`` names them; the text is in llama.cpp).
LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
DIGITS_PATTERN = r"\p{N}"
#: ``tokenizer.ggml.pre`` name -> the pre-tokenizer patterns applied in turn.
GGUF_PRE_PATTERNS: dict[str, tuple[str, ...]] = {
    "default": (GPT2_PATTERN,),
    "gpt-2": (GPT2_PATTERN,),
    "gpt2": (GPT2_PATTERN,),
    "llama-bpe": (LLAMA3_PATTERN,),
    "llama3": (LLAMA3_PATTERN,),
    "smollm": (DIGITS_PATTERN, GPT2_PATTERN),
    "starcoder": (DIGITS_PATTERN, GPT2_PATTERN),
    "qwen2": (QWEN2_PATTERN,),
}

_CLASS_REWRITES = {
    r"[^\s\p{L}\p{N}]": r"(?:[^\s\w]|_)",
    r"[^\r\n\p{L}\p{N}]": r"(?:[^\r\n\w]|_)",
    r"[^\p{L}\p{N}]": r"(?:\W|_)",
    r"\p{L}": r"[^\W\d_]",
    r"\p{N}": r"\d",
}


def translate_pattern(pattern: str) -> str | None:
    """``pattern`` with its Unicode property classes rewritten for :mod:`re`; None if it cannot be."""
    for src, dst in _CLASS_REWRITES.items():
        pattern = pattern.replace(src, dst)
    if r"\p{" in pattern or r"\P{" in pattern:
        return None
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: every byte as one printable character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), ord("\xff") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def token_bytes_table(tokens: Sequence[str], kind: str) -> list[bytes]:
    """The bytes each token stands for, from the tokenizer's token strings."""
    if kind == BYTE_LEVEL:
        inverse = {c: b for b, c in bytes_to_unicode().items()}
        out = []
        for tok in tokens:
            if all(c in inverse for c in tok):
                out.append(bytes(inverse[c] for c in tok))
            else:  # an added token written as plain text, e.g. "<|endoftext|>"
                out.append(tok.encode("utf-8"))
        return out
    if kind == SENTENCEPIECE:
        byte_token = re.compile(r"<0x([0-9A-Fa-f]{2})>")
        out = []
        for tok in tokens:
            m = byte_token.fullmatch(tok)
            out.append(bytes([int(m.group(1), 16)]) if m else tok.replace(SP_SPACE, " ").encode("utf-8"))
        return out
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def byte_fallback_ids(tokens: Sequence[str]) -> list[int]:
    """Ids of SentencePiece's ``<0xNN>`` byte tokens."""
    pattern = re.compile(r"<0x[0-9A-Fa-f]{2}>")
    return [i for i, t in enumerate(tokens) if pattern.fullmatch(t)]


def merges_from_scores(tokens: Sequence[str], scores: Sequence[float]) -> list[tuple[str, str]]:
    """SentencePiece-BPE merge order from token scores (GGUF ``llama`` tokenizers store no merge list)."""
    index = {t: i for i, t in enumerate(tokens)}
    pairs = []
    for tok, score in zip(tokens, scores, strict=True):
        if len(tok) < 2:
            continue
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in index and right in index:
                pairs.append((-score, index[tok], left, right))
    pairs.sort()
    return [(left, right) for _, _, left, right in pairs]


@dataclass
class TokenCodec:
    """Token ids <-> bytes for one model.

    ``token_bytes`` is the table the decoder uses; ``merges`` (pairs of ids
    in rank order), ``patterns`` and ``kind`` drive the encoder.
    """

    kind: str
    token_bytes: list[bytes]
    merges: np.ndarray  # (n, 2) int32 token ids, best first
    patterns: tuple[str, ...]
    byte_tokens: frozenset[int] = frozenset()  # SentencePiece's <0xNN> ids: for raw bytes, never merged into
    _symbol: dict[str, int] = field(default_factory=dict, repr=False)
    _ranks: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict, repr=False)
    _byte_ids: list[int] = field(default_factory=list, repr=False)
    _cache: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(self.token_bytes):
            if i not in self.byte_tokens:
                by_bytes.setdefault(b, i)
        self._byte_ids = [by_bytes.get(bytes([b]), -1) for b in range(256)]
        for i in self.byte_tokens:
            if len(self.token_bytes[i]) == 1:
                self._byte_ids[self.token_bytes[i][0]] = i
        self._compiled = [re.compile(p) for p in self.patterns]
        for rank, (a, b) in enumerate(self.merges.tolist()):
            merged = by_bytes.get(self.token_bytes[a] + self.token_bytes[b])
            if merged is not None and (a, b) not in self._ranks:
                self._ranks[(a, b)] = (rank, merged)
        for i, b in enumerate(self.token_bytes):
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(text) == 1 and i not in self.byte_tokens:
                self._symbol.setdefault(text, i)

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    def covers_all_bytes(self) -> bool:
        """Whether every byte value has a single-byte token (any input can then be coded)."""
        return min(self._byte_ids) >= 0

    def decode(self, ids: Sequence[int]) -> bytes:
        """The bytes of a token sequence (concatenation: no tokenizer involved)."""
        table = self.token_bytes
        return b"".join(table[i] for i in ids)

    def encode(self, data: bytes) -> list[int] | None:
        """Tokens whose bytes are exactly ``data``; None if the vocabulary cannot spell some byte."""
        ids: list[int] = []
        try:
            for text, raw in _utf8_runs(data):
                if text is not None:
                    for piece in self._split(text):
                        ids.extend(self._piece(piece))
                else:
                    ids.extend(self._byte_ids[b] for b in raw)
        except _Unspellable:
            return None
        if min(ids, default=0) < 0 or self.decode(ids) != data:
            return None
        return ids

    def _split(self, text: str) -> list[str]:
        pieces = [text]
        for pattern in self._compiled:
            out = []
            for piece in pieces:
                pos = 0
                for m in pattern.finditer(piece):
                    if m.start() > pos:
                        out.append(piece[pos : m.start()])  # what the translated pattern missed
                    if m.end() > m.start():
                        out.append(m.group())
                    pos = max(pos, m.end())
                if pos < len(piece):
                    out.append(piece[pos:])
            pieces = out
        if self.kind == SENTENCEPIECE:  # SentencePiece merges across no word start
            pieces = [p for piece in pieces for p in re.split(r"(?<=[^ ])(?= )", piece) if p]
        return pieces

    def _piece(self, piece: str) -> tuple[int, ...]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        symbols: list[int] = []
        for ch in piece:
            sid = self._symbol.get(ch)
            if sid is not None:
                symbols.append(sid)
            else:
                symbols.extend(self._byte_ids[b] for b in ch.encode("utf-8"))
        if min(symbols, default=0) < 0:
            raise _Unspellable
        ranks = self._ranks
        while len(symbols) > 1:
            best, where = None, -1
            for i in range(len(symbols) - 1):
                r = ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best is None or r[0] < best[0]):
                    best, where = r, i
            if best is None:
                break
            symbols[where : where + 2] = [best[1]]
        result = tuple(symbols)
        if len(self._cache) < 1 << 16:
            self._cache[piece] = result
        return result


class _Unspellable(Exception):
    pass


_RUNS = re.compile("[\udc80-\udcff]+|[^\udc80-\udcff]+")


def _utf8_runs(data: bytes) -> list[tuple[str | None, bytes]]:
    """``data`` cut into maximal runs of valid UTF-8 (``(text, b"")``) and of other bytes (``(None, raw)``)."""
    runs: list[tuple[str | None, bytes]] = []
    for m in _RUNS.finditer(data.decode("utf-8", "surrogateescape")):
        run = m.group()
        if "\udc80" <= run[0] <= "\udcff":
            runs.append((None, bytes(ord(c) - 0xDC00 for c in run)))
        else:
            runs.append((run, b""))
    return runs
