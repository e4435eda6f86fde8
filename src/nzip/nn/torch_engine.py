"""The integer engine's arithmetic written again in PyTorch (optional; for tests and GPU checks).

An independent implementation of :mod:`nzip.nn.engine`: products in float64
(exact for these integers), everything else in int64 tensor operations, on
any device.  Tests require its frequencies to equal the engine's bit for bit.
"""

from __future__ import annotations

import torch

from .engine import ADAPT_MAX_GAIN, FREQ_TOTAL, GRUEngine
from .export import LUT_SIZE, MULT_SHIFT


class TorchGRUEngine:
    """Same model and arithmetic as a :class:`GRUEngine`, on a torch device."""

    def __init__(self, engine: GRUEngine, device: str = "cpu") -> None:
        def t(a, dtype=torch.int64):
            return torch.as_tensor(a).to(device=device, dtype=dtype)

        self.device = device
        self.engine = engine
        self.table0 = t(engine.table0)
        hidden = engine.hidden  # the engine keeps int16 rows (one per output), zero-padded past hidden
        self.w_hh = [t(w[:, :hidden].T, torch.float64) for w in engine.w_hh]
        self.m_hh = [t(m) for m in engine.m_hh]
        self.b_hn = [t(b) for b in engine.b_hn]
        self.w_ih = [t(w[:, :hidden].T, torch.float64) for w in engine.w_ih]
        self.m_ih = [t(m) for m in engine.m_ih]
        self.b_in = [t(b) for b in engine.b_in]
        self.w_out = t(engine.w_out[:, :hidden].T, torch.float64)
        self.m_out = t(engine.m_out)
        self.b_out = t(engine.b_out)
        self.sigmoid = t(engine.sigmoid)
        self.tanh = t(engine.tanh)
        self.exp = t(engine.exp)

    def new_state(self, lanes: int, rate: int = 0) -> list[torch.Tensor]:
        """Zero state; ``rate > 0`` makes the output layer learn (see :meth:`learn`)."""
        self.rate = rate
        if rate:
            m = self.m_out
            self.gain = torch.where(m > 0, (rate << 22) // m.clamp(min=1), 0).clamp(max=ADAPT_MAX_GAIN)
            self.delta = torch.zeros(self.engine.hidden, 256, dtype=torch.int64, device=self.device)
            self.bias = torch.zeros(256, dtype=torch.int64, device=self.device)
        return [torch.zeros(lanes, self.engine.hidden, dtype=torch.int64, device=self.device)] * self.engine.layers

    def _output_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.rate:
            return self.w_out, self.b_out
        w = (self.w_out.to(torch.int64) + ((self.delta + 32768) >> 16)).clamp(-255, 255)
        return w.to(torch.float64), self.b_out + ((self.bias + 32768) >> 16)

    def learn(self, h: list[torch.Tensor], targets: torch.Tensor, freqs: torch.Tensor, active: int) -> None:
        """One SGD step of the output layer towards ``targets`` (lanes ``< active``), as the engine does."""
        onehot = torch.nn.functional.one_hot(targets.to(device=self.device, dtype=torch.int64), 256)
        err = (freqs - FREQ_TOTAL * onehot + 128) >> 8
        err[active:] = 0
        self.bias = (self.bias - ((self.rate * err.sum(dim=0) + 8) >> 4)).clamp(-(4096 << 16), 4096 << 16)
        h8 = ((h[-1] + 64) >> 7).clamp(-127, 127)
        grad = (h8.to(torch.float64).T @ err.to(torch.float64)).round().to(torch.int64)
        step = (((grad + 128) >> 8) * self.gain + 128) >> 8
        self.delta = (self.delta - step).clamp(-(255 << 16), 255 << 16)

    @staticmethod
    def _requant(h8: torch.Tensor, w: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        acc = (h8.to(torch.float64) @ w).round().to(torch.int64)
        return (acc * m + (1 << (MULT_SHIFT - 1))) >> MULT_SHIFT

    def _lut(self, table: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return table[(v + LUT_SIZE // 2).clamp(0, LUT_SIZE - 1)]

    def step(self, h: list[torch.Tensor], inputs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Read ``inputs`` (one byte per lane); return the new state and the (lanes, 256) frequencies."""
        hd = self.engine.hidden
        gi = self.table0[inputs.to(device=self.device, dtype=torch.int64)]
        new_h = []
        below = None
        for k in range(self.engine.layers):
            if k > 0:
                gi = self._requant(below, self.w_ih[k - 1], self.m_ih[k - 1]) + self.b_in[k - 1]
            h8 = ((h[k] + 64) >> 7).clamp(-127, 127)
            gh = self._requant(h8, self.w_hh[k], self.m_hh[k])
            r = self._lut(self.sigmoid, gi[:, :hd] + gh[:, :hd])
            z = self._lut(self.sigmoid, gi[:, hd : 2 * hd] + gh[:, hd : 2 * hd])
            gn = gh[:, 2 * hd :] + self.b_hn[k]
            n = self._lut(self.tanh, gi[:, 2 * hd :] + ((r * gn + 8192) >> 14))
            hk = n + ((z * (h[k] - n) + 8192) >> 14)
            new_h.append(hk)
            below = ((hk + 64) >> 7).clamp(-127, 127)
        w_out, b_out = self._output_weights()
        logits = self._requant(below, w_out, self.m_out) + b_out
        top = logits.max(dim=1, keepdim=True).values
        index = torch.arange(logits.shape[1], device=self.device).expand_as(logits)
        best = torch.where(logits == top, index, logits.shape[1]).min(dim=1, keepdim=True).values
        e = self.exp[(top - logits).clamp(max=LUT_SIZE - 1)]
        spread = FREQ_TOTAL - logits.shape[1]
        recip = (spread << 32) // e.sum(dim=1, keepdim=True)
        freqs = 1 + ((e * recip) >> 32)
        rest = FREQ_TOTAL - freqs.sum(dim=1, keepdim=True)
        freqs.scatter_add_(1, best, rest)
        return new_h, freqs
