"""LSTM-32 (Steinmetz & Reiss 2022, after Wright et al. 2020): one LSTM layer over ``[x, limit, pr]``.

``y[t] = tanh(W·h[t] + b)`` with ``h[t] = LSTM([x[t], limit, peak_reduction/100], h[t−1], c[t−1])``.
Causal, with unbounded memory (``receptive_field_samples = 0`` marks a recurrent model).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .conditioning import CONDITION_SIZE, broadcast_condition


class LSTMModel(nn.Module):
    """``forward(x [batch, 1, samples], cond [batch, 2]) -> [batch, 1, samples]``."""

    def __init__(self, hidden_size: int = 32) -> None:
        super().__init__()
        self.config = {"architecture": "lstm", "hidden_size": int(hidden_size)}
        self.causal = True
        self.receptive_field_samples = 0
        self.lstm = nn.LSTM(1 + CONDITION_SIZE, hidden_size, batch_first=True)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        inputs = torch.cat([x.transpose(1, 2), broadcast_condition(cond, x.shape[-1])], dim=-1)
        h, _ = self.lstm(inputs)
        return torch.tanh(self.linear(h)).transpose(1, 2)

    # -- streaming --------------------------------------------------------------------------
    def initial_state(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """Zero (h, c), as at the start of :meth:`forward`."""
        zeros = torch.zeros(1, cond.shape[0], self.lstm.hidden_size, dtype=cond.dtype, device=cond.device)
        return zeros, zeros.clone()

    @torch.no_grad()
    def step(
        self, x: Tensor, cond: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One block ``x [batch, 1, S]`` continuing from ``state = (h, c)``."""
        inputs = torch.cat([x.transpose(1, 2), broadcast_condition(cond, x.shape[-1])], dim=-1)
        h, new_state = self.lstm(inputs, state)
        return torch.tanh(self.linear(h)).transpose(1, 2), new_state
