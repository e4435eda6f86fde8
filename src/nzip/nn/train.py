"""Train the byte-level GRU that nzip ships (PyTorch, optional: ``pip install -e '.[train]'``).

Usage::

    python -m nzip.nn.train train configs/gru.toml      # resumes from the run folder if present
    python -m nzip.nn.train export runs/gru/last.pt src/nzip/nn/weights/NAME.npz
    python -m nzip.nn.train compare runs/gru/last.pt NAME.npz FILE...   # float vs integer

The model reads one byte at a time and predicts the next (256 classes).  It is
trained *quantization-aware*: weights are rounded to int8 per output row and
the hidden state to 8 bits wherever it enters a matrix product, with
straight-through gradients, exactly where the integer engine
(:mod:`nzip.nn.engine`) rounds them.  The exported model therefore loses
almost nothing in integer form.

Data: the shards of ``../shared/corpus``; the last ``val_fraction`` of every
shard is held out and never trained on.  Each of ``batch`` lanes reads a
contiguous stretch of one category (drawn by the mixture weights) and carries
its hidden state from one ``seq_len`` chunk to the next (truncated BPTT);
with probability ``jump`` per chunk a lane jumps elsewhere and starts from a
zero state, as the compressor does at the start of every lane.

Everything needed to resume (model, optimiser, data positions, hidden states,
random state) is checkpointed every ``checkpoint_every_s`` seconds and on
SIGINT or SIGTERM; running the same command again resumes.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tomllib
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .export import export_state


@dataclass
class TrainConfig:
    """A training run; every field can be set in the TOML config file."""

    corpus: str = "../shared/corpus"
    run_dir: str = "runs/gru"
    hidden: int = 256
    layers: int = 1
    seq_len: int = 256
    batch: int = 64
    lr: float = 3e-3
    lr_min: float = 1e-4
    warmup_bytes: int = 1_000_000
    total_bytes: int = 150_000_000
    grad_clip: float = 1.0
    jump: float = 1 / 64
    val_fraction: float = 0.015
    val_bytes: int = 65536  # per category
    val_lanes: int = 16
    eval_every_s: float = 600.0
    checkpoint_every_s: float = 300.0
    threads: int = 2
    seed: int = 1
    init: str = ""  # checkpoint whose weights start a new run (a second training phase)
    mixture: dict[str, float] = field(
        default_factory=lambda: {
            "books": 0.45,
            "wiki": 0.20,
            "docs": 0.12,
            "code": 0.10,
            "data": 0.06,
            "multilingual": 0.07,
        }
    )

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        with open(path, "rb") as f:
            values = tomllib.load(f)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**values)


# ---------------------------------------------------------------- the model


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Round each row to int8 at scale max|row|/127, passing gradients straight through."""
    scale = w.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127
    q = torch.clamp(torch.round(w / scale), -127, 127) * scale
    return w + (q - w).detach()


def fake_quant_state(h: torch.Tensor) -> torch.Tensor:
    """Round a state in [-1, 1] to the engine's 8-bit products input (units of 1/128)."""
    q = torch.clamp(torch.round(h * 128), -127, 127) / 128
    return h + (q - h).detach()


def _quantized(name: str) -> bool:
    """Whether the engine rounds this GRU parameter to int8 (all matrices but layer 0's input)."""
    return name.startswith("weight_hh") or (name.startswith("weight_ih") and name != "weight_ih_l0")


class ByteGRU(nn.Module):
    """Byte embedding, ``layers`` GRU layers of ``hidden`` units, linear layer to 256 logits.

    The embedding and the first layer's input weights fold into one table in
    the integer engine (a one-hot input makes that product a lookup), so only
    the recurrent weights, deeper layers' input weights and the output layer
    are rounded to int8 here.
    """

    def __init__(self, hidden: int, layers: int, embed: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.layers = layers
        self.embed = nn.Embedding(256, embed)
        self.gru = nn.GRU(embed, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, 256)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, 256) for bytes ``x`` (B, T), and the final state (layers, B, H)."""
        weights = {name: fake_quant_weight(w) if _quantized(name) else w for name, w in self.gru.named_parameters()}
        seq, h = functional_call(self.gru, weights, (self.embed(x), h0))
        logits = F.linear(fake_quant_state(seq), fake_quant_weight(self.out.weight), self.out.bias)
        return logits, h


# ---------------------------------------------------------------- the data


class Corpus:
    """The corpus shards in memory, split into training and held-out parts per shard."""

    def __init__(self, root: str, categories: list[str], val_fraction: float) -> None:
        self.train: dict[str, list[np.ndarray]] = {}
        self.val: dict[str, list[np.ndarray]] = {}
        for cat in categories:
            shards = sorted(Path(root, cat).glob("*.txt"))
            if not shards:
                raise SystemExit(f"no shards in {Path(root, cat)}")
            self.train[cat], self.val[cat] = [], []
            for shard in shards:
                data = np.fromfile(shard, dtype=np.uint8)
                cut = len(data) - int(len(data) * val_fraction)
                self.train[cat].append(data[:cut])
                self.val[cat].append(data[cut:])

    def validation_set(self, cat: str, size: int) -> np.ndarray:
        """The first ``size`` held-out bytes of a category, taken evenly from its shards."""
        parts = self.val[cat]
        each = size // len(parts)
        return np.concatenate([p[:each] for p in parts])


class Lanes:
    """``batch`` read positions, each walking one shard; resumable via :meth:`state`."""

    def __init__(self, corpus: Corpus, cfg: TrainConfig, rng: np.random.Generator) -> None:
        self.corpus = corpus
        self.cfg = cfg
        self.rng = rng
        self.cats = list(cfg.mixture)
        w = np.array([cfg.mixture[c] for c in self.cats], dtype=np.float64)
        self.weights = w / w.sum()
        self.pos = [self._jump() for _ in range(cfg.batch)]

    def _jump(self) -> tuple[int, int, int]:
        ci = int(self.rng.choice(len(self.cats), p=self.weights))
        shards = self.corpus.train[self.cats[ci]]
        sizes = np.array([len(s) for s in shards], dtype=np.float64)
        si = int(self.rng.choice(len(shards), p=sizes / sizes.sum()))
        return ci, si, int(self.rng.integers(0, len(shards[si]) - self.cfg.seq_len - 1))

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """Bytes (batch, seq_len + 1) and a mask of lanes that jumped (their state must reset)."""
        n = self.cfg.seq_len
        out = np.empty((self.cfg.batch, n + 1), dtype=np.int64)
        reset = np.zeros(self.cfg.batch, dtype=bool)
        for i, (ci, si, p) in enumerate(self.pos):
            shard = self.corpus.train[self.cats[ci]][si]
            if p + n + 1 > len(shard) or self.rng.random() < self.cfg.jump:
                ci, si, p = self._jump()
                shard = self.corpus.train[self.cats[ci]][si]
                reset[i] = True
            out[i] = shard[p : p + n + 1]
            self.pos[i] = (ci, si, p + n)
        return out, reset


# ---------------------------------------------------------------- training


def lr_at(cfg: TrainConfig, seen: int) -> float:
    if seen < cfg.warmup_bytes:
        return cfg.lr * max(seen, 1) / cfg.warmup_bytes
    frac = min(1.0, (seen - cfg.warmup_bytes) / max(1, cfg.total_bytes - cfg.warmup_bytes))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac))


@torch.no_grad()
def evaluate(model: ByteGRU, corpus: Corpus, cfg: TrainConfig) -> dict[str, float]:
    """Bits per byte on each category's held-out bytes, every lane starting from a zero state."""
    model.eval()
    result = {}
    for cat in cfg.mixture:
        data = corpus.validation_set(cat, cfg.val_bytes)
        lanes = cfg.val_lanes
        per = len(data) // lanes
        x = torch.from_numpy(data[: per * lanes].astype(np.int64).reshape(lanes, per))
        h = torch.zeros(model.layers, lanes, model.hidden)
        bits = 0.0
        for s in range(0, per - 1, cfg.seq_len):
            chunk = x[:, s : min(s + cfg.seq_len + 1, per)]
            logits, h = model(chunk[:, :-1], h)
            bits += F.cross_entropy(logits.reshape(-1, 256), chunk[:, 1:].reshape(-1), reduction="sum").item()
        result[cat] = bits / math.log(2) / (lanes * (per - 1))
    model.train()
    return result


def log(run_dir: Path, message: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
    print(line, flush=True)
    with open(run_dir / "log.txt", "a") as f:
        f.write(line + "\n")


def train(cfg: TrainConfig) -> None:
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(cfg.corpus, list(cfg.mixture), cfg.val_fraction)
    torch.manual_seed(cfg.seed)
    model = ByteGRU(cfg.hidden, cfg.layers)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    lanes = Lanes(corpus, cfg, rng)
    h = torch.zeros(cfg.layers, cfg.batch, cfg.hidden)
    seen = 0
    ckpt = run_dir / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        lanes.pos = state["lanes"]
        h = state["h"]
        seen = state["seen"]
        log(run_dir, f"resumed at {seen / 1e6:.1f} MB")
    else:
        if cfg.init:
            model.load_state_dict(torch.load(cfg.init, weights_only=False)["model"])
        log(run_dir, f"new run: {asdict(cfg)}; {sum(p.numel() for p in model.parameters())} parameters")

    def save() -> None:
        state = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "lanes": lanes.pos,
            "h": h,
            "seen": seen,
            "config": asdict(cfg),
        }
        torch.save(state, run_dir / "tmp.pt")
        os.replace(run_dir / "tmp.pt", ckpt)

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    last_ckpt = last_eval = time.monotonic()
    window_bits = window_bytes = 0.0
    t0 = time.monotonic()
    seen0 = seen
    while seen < cfg.total_bytes and not stop:
        chunk, reset = lanes.next_chunk()
        x = torch.from_numpy(chunk)
        h = h.detach()
        h[:, torch.from_numpy(reset)] = 0
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, seen)
        logits, h = model(x[:, :-1], h)
        loss = F.cross_entropy(logits.reshape(-1, 256), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        n = cfg.batch * cfg.seq_len
        seen += n
        window_bits += loss.item() / math.log(2) * n
        window_bytes += n
        now = time.monotonic()
        if now - last_ckpt >= cfg.checkpoint_every_s:
            save()
            rate = (seen - seen0) / (now - t0)
            log(run_dir, f"{seen / 1e6:.1f} MB  train {window_bits / window_bytes:.3f} bpb  {rate / 1e3:.1f} KB/s")
            window_bits = window_bytes = 0.0
            last_ckpt = now
        if now - last_eval >= cfg.eval_every_s:
            val = evaluate(model, corpus, cfg)
            log(run_dir, f"{seen / 1e6:.1f} MB  val " + "  ".join(f"{k} {v:.3f}" for k, v in val.items()))
            last_eval = time.monotonic()
    save()
    if stop:
        log(run_dir, f"stopped at {seen / 1e6:.1f} MB; resume with the same command")
        return
    val = evaluate(model, corpus, cfg)
    log(run_dir, f"done at {seen / 1e6:.1f} MB  val " + "  ".join(f"{k} {v:.3f}" for k, v in val.items()))


@torch.no_grad()
def compare(checkpoint: str, weights: str, files: list[str]) -> None:
    """Float (fake-quantized) model against the integer engine, with the compressor's lanes."""
    from ..models.neural import lane_count
    from .engine import START_BYTE, GRUEngine
    from .evaluate import network_bits

    state = torch.load(checkpoint, weights_only=False)
    cfg = state["config"]
    model = ByteGRU(cfg["hidden"], cfg["layers"])
    model.load_state_dict(state["model"])
    model.eval()
    engine = GRUEngine.load(weights)
    for name in files:
        data = np.fromfile(name, dtype=np.uint8)
        lanes = lane_count(len(data))
        lane_len = -(-len(data) // lanes)
        padded = np.zeros(lanes * lane_len, dtype=np.int64)
        padded[: len(data)] = data
        x = torch.from_numpy(padded.reshape(-1, lane_len))
        inputs = torch.cat([torch.full((x.shape[0], 1), START_BYTE), x[:, :-1]], dim=1)
        logits, _ = model(inputs, torch.zeros(cfg["layers"], x.shape[0], cfg["hidden"]))
        nll = F.cross_entropy(logits.reshape(-1, 256), x.reshape(-1), reduction="none")[: len(data)]
        float_bpb = nll.sum().item() / math.log(2) / len(data)
        int_bpb = network_bits(engine, data.tobytes()) / len(data)
        change = 100 * (int_bpb / float_bpb - 1)
        print(f"{name}: float {float_bpb:.4f}  integer {int_bpb:.4f} bits/byte ({change:+.2f}%)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nzip.nn.train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train (or resume) the run a config file describes")
    p_train.add_argument("config")
    p_export = sub.add_parser("export", help="write a checkpoint's integer weights (.npz) for nzip")
    p_export.add_argument("checkpoint")
    p_export.add_argument("output")
    p_cmp = sub.add_parser("compare", help="bits per byte of a checkpoint in float and of its integer export")
    p_cmp.add_argument("checkpoint")
    p_cmp.add_argument("weights")
    p_cmp.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(TrainConfig.load(args.config))
    elif args.command == "compare":
        compare(args.checkpoint, args.weights, args.files)
    else:
        state = torch.load(args.checkpoint, weights_only=False)
        params = {k: v.detach().numpy().astype(np.float64) for k, v in state["model"].items()}
        cfg = state["config"]
        export_state(params, cfg["hidden"], cfg["layers"], args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
