"""micro-TCN (Steinmetz & Reiss 2022): a conditioned temporal convolutional network.

Each block is ``Conv1d (no bias, no padding, dilation d) → BatchNorm(affine=False) → FiLM → PReLU``
plus a residual through a depthwise 1×1 convolution, cropped to the block's output.  Block ``n``
uses dilation ``growth**n``, so the receptive field is ``r = 1 + Σ_n (K − 1)·growth**n`` samples
(TCN-300: K = 13, four blocks, growth 10 → 13 333 samples ≈ 302 ms at 44.1 kHz).

Padding is applied once, to the input, so the output has the input's length:

* causal: ``r − 1`` zeros on the left; output[t] depends on x[t − r + 1 … t] and is aligned to
  y[t] (every residual is aligned to its convolution's *last* tap, so there is no one-sample delay);
* non-causal: each block looks ``(K − 1)·d // 2`` samples ahead (centre crop); the input is padded
  with ``lookahead_samples`` zeros on the right and the rest on the left.

:meth:`TCN.step` runs the same network block by block with one history buffer per layer (the last
``(K − 1)·d`` inputs of each convolution), so streaming costs O(block) rather than O(receptive field).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditioning import ChannelLinear, ConditioningMLP, FiLM


class TCNBlock(nn.Module):
    """One unpadded conditioned block: ``[batch, C_in, S] -> [batch, C_out, S − (K − 1)·d]``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, causal: bool
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, affine=False)
        self.film = FiLM(out_channels)
        self.act = nn.PReLU(out_channels)
        self.residual = nn.Conv1d(in_channels, out_channels, 1, groups=in_channels, bias=False)
        self.span_samples = (kernel_size - 1) * dilation
        self.lookahead_samples = 0 if causal else self.span_samples // 2

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.act(self.film(self.norm(self.conv(x)), embedding))
        start = self.span_samples - self.lookahead_samples
        # depthwise 1×1 residual as a broadcast product (grouped convs take a slow per-group path on CPU)
        return h + self.residual.weight.view(1, -1, 1) * x[:, :, start : start + h.shape[-1]]


class TCN(nn.Module):
    """``forward(x [batch, 1, samples], cond [batch, 2]) -> [batch, 1, samples]``."""

    def __init__(
        self,
        kernel_size: int = 13,
        blocks: int = 4,
        dilation_growth: int = 10,
        channels: int = 32,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.config = {
            "architecture": "tcn",
            "kernel_size": int(kernel_size),
            "blocks": int(blocks),
            "dilation_growth": int(dilation_growth),
            "channels": int(channels),
            "causal": bool(causal),
        }
        self.causal = bool(causal)
        self.conditioning = ConditioningMLP()
        self.blocks = nn.ModuleList(
            TCNBlock(1 if n == 0 else channels, channels, kernel_size, dilation_growth**n, causal)
            for n in range(blocks)
        )
        self.output = ChannelLinear(channels, 1)
        self.receptive_field_samples = 1 + sum(int(b.span_samples) for b in self.blocks)
        self.lookahead_samples = sum(int(b.lookahead_samples) for b in self.blocks)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        embedding = self.conditioning(cond)
        left = self.receptive_field_samples - 1 - self.lookahead_samples
        h = F.pad(x, (left, self.lookahead_samples))
        for block in self.blocks:
            h = block(h, embedding)
        return torch.tanh(self.output(h))

    # -- streaming --------------------------------------------------------------------------
    @torch.no_grad()
    def initial_state(self, cond: Tensor) -> list[Tensor]:
        """Per-layer input histories as they are after silence: layer ``n`` sees a constant."""
        embedding = self.conditioning(cond)
        state = []
        h = torch.zeros(cond.shape[0], 1, 1, dtype=cond.dtype, device=cond.device)
        for block in self.blocks:
            state.append(h.expand(-1, -1, block.span_samples).clone())
            h = block(h.expand(-1, -1, block.span_samples + 1), embedding)
        return state

    @torch.no_grad()
    def step(self, x: Tensor, embedding: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """One block ``x [batch, 1, S]`` with per-layer histories; output delayed by
        ``lookahead_samples`` (zero for causal models).  ``embedding = self.conditioning(cond)``."""
        new_state = []
        h = x
        for block, history in zip(self.blocks, state):
            h = torch.cat([history, h], dim=-1)
            new_state.append(h[:, :, h.shape[-1] - block.span_samples :])
            h = block(h, embedding)
        return torch.tanh(self.output(h)), new_state
