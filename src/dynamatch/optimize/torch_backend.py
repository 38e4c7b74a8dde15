r"""The fitting objective evaluated in torch on CPU or CUDA: every chunk in one batched pass of parallel scans.

:class:`TorchCompressorObjective` is a :class:`~dynamatch.optimize.objective.CompressorObjective` (same
loss, gradient and Hessian assembly, same chunking and warm-up, same interface for the damped Newton of
:mod:`dynamatch.optimize.newton`) whose kernel sums come from :mod:`dynamatch.kernels.torch_scan` instead
of the numba kernels.  The chunks are laid out once as a (chunks, samples) array on the device (the last
one zero-padded, padding and warm-up masked out of the sums) and evaluated ``batch_chunks`` at a time.

Every member of the family: each has a torch module generated from its one description
(:mod:`dynamatch.kernels.torch_generated`, written by ``python -m dynamatch.codegen``; see
:mod:`dynamatch.codegen.torch_module`).  torch is imported lazily.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from ..kernels.chunks import chunk_bounds, chunk_count
from ..units import DB_TO_LOG
from .objective import CompressorObjective

DEVICES = ("cuda", "cpu-torch")


class TorchCompressorObjective(CompressorObjective):
    """:class:`CompressorObjective` whose sums are computed by torch parallel scans on ``device``.

    ``device``: ``"cuda"``, ``"cuda:N"`` or ``"cpu-torch"``; ``dtype``: ``"float64"`` (matches the numba
    kernels to ~1e-12) or ``"float32"``; ``batch_chunks``: chunks per batched pass (memory for the Hessian of
    a member with p kernel parameters ≈ ``batch_chunks · chunk_samples · (1 + p + p(p+1)/2) · 8`` bytes,
    float64, times a factor of a few for the intermediates)."""

    def __init__(self, dry: np.ndarray, wet: np.ndarray, sample_rate: float, *, model: str = "ff5",
                 device: str = "cpu-torch", dtype: str = "float64", batch_chunks: int = 16,
                 chunk_seconds: float = 12.0, warmup_seconds: float = 1.0, prefilter: bool = True,
                 block: int | None = None) -> None:
        super().__init__(dry, wet, sample_rate, model=model, chunk_seconds=chunk_seconds,
                         warmup_seconds=warmup_seconds, prefilter=prefilter)
        import torch

        from ..kernels import torch_scan

        if dtype not in ("float64", "float32"):
            raise ParameterError(f"dtype must be float64 or float32, got {dtype!r}")
        if batch_chunks < 1:
            raise ParameterError(f"batch_chunks must be >= 1, got {batch_chunks}")
        self.device = torch_scan.available_device(device)
        self.dtype = getattr(torch, dtype)
        self.batch_chunks = int(batch_chunks)
        self.block = block or torch_scan.DEFAULT_BLOCK
        self.passes = 0  # branch fixed-point passes of the last evaluation (the largest over batches)
        self._lay_out_chunks()

    def _set_model(self, model: str) -> None:
        from ..kernels.torch_family import torch_kernels_of

        super()._set_model(model)
        self._torch_kernels = torch_kernels_of(self.spec.module_name)

    def _lay_out_chunks(self) -> None:
        import torch

        from ..kernels.objective import detector_log_level
        from ..kernels.prefilter import prefilter

        total = self._dry.size
        chunks = chunk_count(total, self.chunk_samples, self.warmup_samples)
        target = prefilter(self._wet) if self._zero else self._wet  # the numba kernels filter it as they read
        width = min(self.chunk_samples, total)
        x = np.zeros((chunks, width))
        level = np.zeros((chunks, width))
        t = np.zeros((chunks, width))
        counted = np.zeros((chunks, width))
        for k in range(chunks):
            start, stop, count_from = chunk_bounds(k, total, self.chunk_samples, self.warmup_samples)
            n = stop - start
            x[k, :n] = self._dry[start:stop]
            level[k, :n] = detector_log_level(self._dry[start:stop])
            level[k, n:] = math.log(1e-10)  # padding: below any threshold
            t[k, :n] = target[start:stop]
            counted[k, count_from - start:n] = 1.0

        def put(a):
            return torch.as_tensor(a, dtype=self.dtype, device=self.device)

        self._chunks = [tuple(put(a[b: b + self.batch_chunks]) for a in (x, level, t, counted))
                        for b in range(0, chunks, self.batch_chunks)]
        self._guesses: list = [None] * len(self._chunks)

    def with_model(self, model: str) -> "TorchCompressorObjective":
        other = object.__new__(TorchCompressorObjective)
        other.__dict__.update(self.__dict__)
        other._set_model(model)
        other._guesses = [None] * len(self._chunks)
        return other

    def _sums(self, order: int, q: np.ndarray) -> np.ndarray:
        import torch

        makeup_gain = math.exp(DB_TO_LOG * q[-1])
        kernel_q = torch.as_tensor(q[:-1], dtype=self.dtype, device=self.device)
        total = None
        self.passes = 0
        for b, (x, level, t, weight) in enumerate(self._chunks):
            sums, states, passes = self._torch_kernels.sums(order, x, level, t, weight, kernel_q, makeup_gain,
                                                            self._zero, self._pole, self._guesses[b], self.block)
            self._guesses[b] = states  # warm start of the next evaluation's branch search
            self.passes = max(self.passes, passes)
            total = sums if total is None else total + sums
        return total.cpu().numpy().astype(np.float64)
