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

from .engine_numpy import MAX_INNER32


def _int_mm_is_exact(torch) -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) gives exact sums here.

    oneDNN's kernel overflowed on CPUs without VNNI in some releases, so the
    worst case (every product +-127 * 127, a long inner dimension) is
    checked against numpy's int64 product before it is trusted; otherwise
    the float32 pieces are used, which give the same integers.
    """
    if not hasattr(torch, "_int_mm"):
        return False
    rng = np.random.default_rng(0)
    a = np.full((32, 4096), 127, dtype=np.int8)
    a[1::2] = -127
    b = rng.choice(np.array([-127, 127], dtype=np.int8), size=(4096, 64))
    b[:, 0] = 127
    try:
        got = torch._int_mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    except RuntimeError:
        return False
    return bool(np.array_equal(got.astype(np.int64), a.astype(np.int64) @ b.astype(np.int64)))


class TorchBackend:
    """Array operations on torch tensors.

    ``engine`` ``"torch"``: CPU, with numba for the element-wise work around
    the products and ``torch._int_mm`` for them (the fastest CPU engine);
    ``"torch-ops"``: CPU with torch operations only, which is exactly what runs
    on a GPU, so the CPU tests cover the GPU's arithmetic; ``"cuda"`` (or
    ``"cuda:N"``): the GPU.
    """

    name = "torch"

    def __init__(self, engine: str = "torch") -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cpu" if engine in ("torch", "torch-ops", "cpu") else engine)
        self.kernels = engine == "torch"
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")
        self.int_mm = self.kernels and _int_mm_is_exact(torch)
        if self.kernels:
            self.attend = self._attend_kernel  # the engine uses tensor operations where this is absent

    def asarray(self, a, float64: bool = False):
        t = self.torch
        return t.from_numpy(np.array(a)).to(device=self.device, dtype=t.float64 if float64 else t.int64)

    def zeros(self, shape: tuple, float64: bool = False):
        t = self.torch
        return t.zeros(shape, dtype=t.float64 if float64 else t.int64, device=self.device)

    def zeros16(self, shape: tuple):
        return self.torch.zeros(shape, dtype=self.torch.int16, device=self.device)

    def quantize_heads(self, x):
        """Quantized rows and their scales: :func:`.attention.quantize_heads`, operation for operation."""
        from . import attention

        t = self.torch
        if self.kernels:
            x = x.contiguous()
            xq = t.empty(x.shape, dtype=t.int16)
            xr = t.empty(x.shape[0], dtype=t.int64)
            attention.quantize_heads(x.numpy(), xq.numpy(), xr.numpy())
            return xq, xr
        levels, clip = attention.LEVELS, attention.CLIP_ROW
        x = t.clamp(x, -clip, clip)
        amax = t.clamp(x.abs().amax(dim=-1, keepdim=True), 1, clip)
        r = t.div(t.full_like(amax, levels << 31), amax, rounding_mode="floor")
        xq = ((x * r + (1 << 30)) >> 31).to(t.int16)
        xr = t.div((amax << 16) + levels // 2, levels, rounding_mode="floor")
        return xq, xr[:, 0]

    def store_heads(self, x, xq, xr, start: int) -> None:
        if self.kernels:
            from . import attention

            attention.store_heads(x.numpy(), xq.numpy(), xr.numpy(), start)
            return
        lanes, t, kv_heads, d = x.shape
        q, r = self.quantize_heads(x.reshape(-1, d))
        xq[:, :, start : start + t] = q.reshape(lanes, t, kv_heads, d).permute(0, 2, 1, 3)
        xr[:, :, start : start + t] = r.reshape(lanes, t, kv_heads).permute(0, 2, 1)

    def _attend_kernel(self, qq, qr, kq, kr, vq, vr, start: int, isd: int, exp):
        from . import attention

        out = self.torch.empty(qq.shape, dtype=self.torch.int64)
        args = [a.contiguous().numpy() for a in (qq, qr)] + [a.numpy() for a in (kq, kr, vq, vr)]
        attention.attend(*args, start, isd, exp.numpy(), out.numpy())
        return out

    def tokens(self, tok: np.ndarray):
        return self.asarray(np.asarray(tok, dtype=np.int64))

    def matmul_exact(self, a, b):
        return self.torch.matmul(a, b).to(self.torch.int64)

    def to_float(self, a):
        return a.to(self.torch.float64)

    def quantize8(self, x):
        t = self.torch
        if self.kernels:  # the numba kernels, on the tensors' memory
            from . import kernels

            x = x.contiguous()
            q = t.empty(x.shape, dtype=t.float32)
            ra = t.empty(x.shape[0], dtype=t.int64)
            kernels.quantize_rows(x.numpy(), q.numpy(), ra.numpy())
            return (q.to(t.int8) if self.int_mm else q), ra
        x = t.clamp(x, -(1 << 24), 1 << 24)
        amax = t.clamp(x.abs().amax(dim=-1, keepdim=True), 1, 1 << 24)
        r = t.div(t.full_like(amax, 127 << 31), amax, rounding_mode="floor")
        q = ((x * r + (1 << 30)) >> 31).to(t.int8 if self.int_mm else t.float32)
        ra = t.div((amax << 16) + 63, 127, rounding_mode="floor")
        return q, ra[:, 0]

    def requant8(self, acc, lin, ra):
        if self.kernels:
            from . import kernels

            out = self.torch.empty(acc.shape, dtype=self.torch.int64)
            kernels.requant(
                acc.contiguous().numpy(), lin.m.numpy(), lin.sh.numpy(), lin.half.numpy(), ra.numpy(), out.numpy()
            )
            return out
        u = (acc.to(self.torch.int64) * lin.m + (1 << 15)) >> 16
        return (u * ra[:, None] + lin.half) >> lin.sh

    def weights8(self, wt: np.ndarray):
        t = self.torch
        if self.int_mm:
            return t.from_numpy(np.ascontiguousarray(wt, dtype=np.int8)).to(self.device)
        return [
            t.from_numpy(np.ascontiguousarray(wt[i : i + MAX_INNER32], dtype=np.float32)).to(self.device)
            for i in range(0, wt.shape[0], MAX_INNER32)
        ]

    def matmul8(self, q, w):
        t = self.torch
        if self.int_mm:
            return t._int_mm(q, w)
        acc = None
        for i, piece in enumerate(w):
            part = t.matmul(q[:, i * MAX_INNER32 : (i + 1) * MAX_INNER32], piece)
            acc = part if acc is None else acc.to(t.float64) + part
        return acc

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
