"""The integer engine's arithmetic written again in PyTorch (optional; for tests and GPU checks).

An independent implementation of :mod:`nzip.nn.engine`: products in float64
(exact for these integers), everything else in int64 tensor operations, on
any device.  Tests require its frequencies to equal the engine's bit for bit.
"""

from __future__ import annotations

import torch

from .engine import FREQ_TOTAL, GRUEngine
from .export import LUT_SIZE, MULT_SHIFT


class TorchGRUEngine:
    """Same model and arithmetic as a :class:`GRUEngine`, on a torch device."""

    def __init__(self, engine: GRUEngine, device: str = "cpu") -> None:
        def t(a, dtype=torch.int64):
            return torch.as_tensor(a).to(device=device, dtype=dtype)

        self.device = device
        self.engine = engine
        self.table0 = t(engine.table0)
        self.w_hh = [t(w, torch.float64) for w in engine.w_hh]
        self.m_hh = [t(m) for m in engine.m_hh]
        self.b_hn = [t(b) for b in engine.b_hn]
        self.w_ih = [t(w, torch.float64) for w in engine.w_ih]
        self.m_ih = [t(m) for m in engine.m_ih]
        self.b_in = [t(b) for b in engine.b_in]
        self.w_out = t(engine.w_out, torch.float64)
        self.m_out = t(engine.m_out)
        self.b_out = t(engine.b_out)
        self.sigmoid = t(engine.sigmoid)
        self.tanh = t(engine.tanh)
        self.exp = t(engine.exp)

    def new_state(self, lanes: int) -> list[torch.Tensor]:
        return [torch.zeros(lanes, self.engine.hidden, dtype=torch.int64, device=self.device)] * self.engine.layers

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
        logits = self._requant(below, self.w_out, self.m_out) + self.b_out
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
