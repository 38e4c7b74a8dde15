"""Block-by-block inference for every neural model, with the model's state carried across blocks.

Each architecture provides ``initial_state(cond)`` and ``step(x, ..., state)``: the TCN carries one
input history per layer (the last ``(K − 1)·d`` samples each convolution needs), the LSTM/GRU carry
``(h, c)`` / ``h``, and the S4 model carries the complex SSM state of every layer.  The output of
:meth:`StreamingProcessor.process` over consecutive blocks equals ``model(x, cond)`` in eval mode,
delayed by :attr:`StreamingProcessor.latency_samples` (non-zero only for non-causal TCNs).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import AudioError
from .conditioning import check_condition
from .s4 import S4Model
from .tcn import TCN


class StreamingProcessor:
    """``StreamingProcessor(model, (limit, peak_reduction/100)).process(block) -> block``.

    The model is switched to eval mode and must not change while the processor is in use.
    Blocks are mono 1-D float32/float64 arrays of any length; the output has the block's dtype.
    """

    def __init__(self, model: nn.Module, cond: tuple[float, float]) -> None:
        self.model = model.eval()
        parameter = next(model.parameters())
        self._dtype, self._device = parameter.dtype, parameter.device
        self._cond = torch.tensor([check_condition(cond)], dtype=self._dtype, device=self._device)
        self.latency_samples = int(getattr(model, "lookahead_samples", 0))
        with torch.no_grad():
            self._embedding = model.conditioning(self._cond) if hasattr(model, "conditioning") else None
        self._tables: dict[int, list] = {}  # S4: per-block-size tables
        self.reset()

    def reset(self) -> None:
        """Back to the state at the start of a signal (silence before it)."""
        with torch.no_grad():
            self._state = self.model.initial_state(self._cond)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Process the next ``block`` (1-D) and return as many output samples."""
        array = np.asarray(block)
        if array.ndim != 1:
            raise AudioError(f"expected a mono block of shape (samples,), got shape {array.shape}")
        if array.size == 0:
            return array.copy()
        x = torch.from_numpy(np.ascontiguousarray(array)).to(self._dtype).view(1, 1, -1)
        with torch.inference_mode():
            y, self._state = self._step(x)
        return y.view(-1).numpy().astype(array.dtype if array.dtype.kind == "f" else np.float32, copy=False)

    def _step(self, x: torch.Tensor):
        model = self.model
        if isinstance(model, TCN):
            return model.step(x, self._embedding, self._state)
        if isinstance(model, S4Model):
            samples = x.shape[-1]
            if samples not in self._tables:
                if len(self._tables) > 8:  # hosts use a handful of block sizes
                    self._tables.clear()
                self._tables[samples] = [b.ssm.block_tables(samples, self._dtype) for b in model.blocks]
            return model.step(x, self._embedding, self._state, self._tables[samples])
        return model.step(x, self._cond, self._state)
