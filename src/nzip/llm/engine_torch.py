"""The integer engine's operations on PyTorch: for CUDA, and as the CPU engine's cross-check.

The forward pass is :class:`~.engine.Engine`'s; this backend supplies its
array operations with torch tensors.  The same exactness argument holds: the
float64 products see integer operands whose sums stay below 2**53, so cuBLAS,
MKL or oneDNN, in whatever order or tiling, return the exact integers (TF32
and reduced-precision products are switched off all the same).  Integer
shifts and floor divisions are torch's int64 operations.
"""

from __future__ import annotations

import numpy as np


class TorchBackend:
    """Array operations on torch tensors on ``device`` (``"torch"`` means CPU, ``"cuda"`` the GPU)."""

    name = "torch"

    def __init__(self, device: str = "torch") -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cpu" if device in ("torch", "cpu") else device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")

    def asarray(self, a, float64: bool = False):
        t = self.torch
        return t.from_numpy(np.array(a)).to(device=self.device, dtype=t.float64 if float64 else t.int64)

    def zeros(self, shape: tuple, float64: bool = False):
        t = self.torch
        return t.zeros(shape, dtype=t.float64 if float64 else t.int64, device=self.device)

    def tokens(self, tok: np.ndarray):
        return self.asarray(np.asarray(tok, dtype=np.int64))

    def matmul_exact(self, a, b):
        return self.torch.matmul(a, b).to(self.torch.int64)

    def to_float(self, a):
        return a.to(self.torch.float64)

    def asarray32(self, a):
        return self.torch.from_numpy(np.array(a, dtype=np.float32)).to(self.device)

    def to_float32(self, a):
        return a.to(self.torch.float32)

    def quantize8(self, x):
        t = self.torch
        x = t.clamp(x, -(1 << 24), 1 << 24)
        amax = t.clamp(x.abs().amax(dim=-1, keepdim=True), 1, 1 << 24)
        r = t.div(t.full_like(amax, 127 << 31), amax, rounding_mode="floor")
        q = ((x * r + (1 << 30)) >> 31).to(t.float32)
        ra = t.div((amax << 16) + 63, 127, rounding_mode="floor")
        return q, ra

    def requant8(self, acc, lin, ra):
        u = (acc.to(self.torch.int64) * lin.m + (1 << 15)) >> 16
        return (u * ra + lin.half) >> lin.sh

    def matmul_float(self, a, b):
        return self.torch.matmul(a, b)

    def clip(self, a, lo: int, hi: int):
        return self.torch.clamp(a, lo, hi)

    def take(self, table, idx):
        return table[idx]

    def isqrt(self, n):
        t = self.torch
        r = t.sqrt(n.to(t.float64)).to(t.int64)
        for _ in range(2):
            r = t.where(r * r > n, r - 1, r)
            r = t.where((r + 1) * (r + 1) <= n, r + 1, r)
        return r

    def amax(self, a, axis: int):
        return a.amax(dim=axis, keepdim=True)

    def sum(self, a, axis: int):
        return a.sum(dim=axis, keepdim=True)

    def where(self, cond, a, b):
        t = self.torch
        return t.where(
            cond,
            a if t.is_tensor(a) else t.tensor(a, device=self.device),
            b if t.is_tensor(b) else t.tensor(b, device=self.device),
        )

    def arange(self, n: int):
        return self.torch.arange(n, dtype=self.torch.int64, device=self.device)

    def numpy(self, a) -> np.ndarray:
        return a.cpu().numpy()

    def transpose(self, a, dims: tuple):
        return a.permute(*dims)

    def cat(self, a, b):
        return self.torch.cat([a, b], dim=-1)

    def contiguous(self, a):
        return a.contiguous()
