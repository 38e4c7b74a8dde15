"""Control-parameter conditioning (and the one small layer) shared by every neural model.

The LA-2A has two controls, fed to the networks as ``cond = [limit, peak_reduction / 100]``
(``limit`` ∈ {0, 1}).  :class:`ConditioningMLP` maps them to a 32-d embedding
(Linear 2→16→32→32, ReLU after each, as in micro-TCN) and :class:`FiLM` turns the embedding into a
per-channel scale and shift: ``FiLM(h) = γ(c) ⊙ h + β(c)`` (Perez et al. 2018).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ParameterError

CONDITION_SIZE = 2  # [limit, peak_reduction / 100]
EMBEDDING_SIZE = 32


class ConditioningMLP(nn.Module):
    """``[batch, 2] -> [batch, 32]``: Linear(2,16)–ReLU–Linear(16,32)–ReLU–Linear(32,32)–ReLU."""

    def __init__(self, condition_size: int = CONDITION_SIZE, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(condition_size, 16),
            nn.ReLU(),
            nn.Linear(16, 32),
            nn.ReLU(),
            nn.Linear(32, embedding_size),
            nn.ReLU(),
        )

    def forward(self, cond: Tensor) -> Tensor:
        return self.net(cond)


class FiLM(nn.Module):
    """Feature-wise affine modulation ``γ ⊙ h + β`` with ``(γ, β) = Linear(32 → 2C)(embedding)``."""

    def __init__(self, channels: int, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        self.adaptor = nn.Linear(embedding_size, 2 * channels)

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        """``h``: [batch, channels, samples]; ``embedding``: [batch, 32]."""
        gamma, beta = torch.chunk(self.adaptor(embedding), 2, dim=-1)
        return h * gamma.unsqueeze(-1) + beta.unsqueeze(-1)


def check_condition(cond) -> tuple[float, float]:
    """Validate ``(limit, peak_reduction / 100)``: limit 0 or 1, peak reduction scaled to [0, 1]."""
    try:
        limit, peak_reduction = (float(v) for v in cond)
    except (TypeError, ValueError):
        raise ParameterError(f"cond must be (limit, peak_reduction / 100), got {cond!r}") from None
    if limit not in (0.0, 1.0) or not (math.isfinite(peak_reduction) and 0.0 <= peak_reduction <= 1.0):
        raise ParameterError(
            f"cond must be (limit 0 or 1, peak_reduction / 100 in [0, 1]), got {cond!r}; "
            "divide the peak reduction knob (0-100) by 100"
        )
    return limit, peak_reduction


def broadcast_condition(cond: Tensor, samples: int) -> Tensor:
    """``[batch, 2] -> [batch, samples, 2]``: the controls repeated at every time step (RNN inputs)."""
    return cond.unsqueeze(1).expand(cond.shape[0], samples, cond.shape[1])


class ChannelLinear(nn.Linear):
    """``nn.Linear`` across the channels of ``[batch, C_in, samples]`` without transposes
    (a matmul; PyTorch's CPU path for 1×1 convolutions is several times slower)."""

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias
        assert bias is not None
        return torch.matmul(self.weight, x) + bias.unsqueeze(-1)
