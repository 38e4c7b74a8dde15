"""The 4A-2A-G stage: a tiny residual GRU after the fitted compressor (make-up at 0 dB).

``y[t] = x[t] + W·h[t] + b`` with ``h[t] = GRU([x[t], limit, peak_reduction/100], h[t−1])``, 8 hidden
units.  Unconditioned (the reference's 273 parameters) it sees ``x`` only; conditioned (our default)
the controls are appended to every input (+48 parameters).  PyTorch GRU equations (gate order r, z, n):

    r = σ(W_ir u + b_ir + W_hr h + b_hr)
    z = σ(W_iz u + b_iz + W_hz h + b_hz)
    n = tanh(W_in u + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from ..kernels._numba import kernel
from .conditioning import CONDITION_SIZE, broadcast_condition


class GRUStage(nn.Module):
    """``forward(x [batch, 1, samples], cond [batch, 2]) -> [batch, 1, samples]`` (x + correction)."""

    def __init__(self, hidden_size: int = 8, conditioned: bool = True) -> None:
        super().__init__()
        self.config = {"architecture": "gru", "hidden_size": int(hidden_size), "conditioned": bool(conditioned)}
        self.causal = True
        self.receptive_field_samples = 0
        self.conditioned = bool(conditioned)
        self.gru = nn.GRU(1 + (CONDITION_SIZE if conditioned else 0), hidden_size, batch_first=True)
        self.linear = nn.Linear(hidden_size, 1)

    def _inputs(self, x: Tensor, cond: Tensor) -> Tensor:
        u = x.transpose(1, 2)
        if self.conditioned:
            u = torch.cat([u, broadcast_condition(cond, x.shape[-1])], dim=-1)
        return u

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h, _ = self.gru(self._inputs(x, cond))
        return x + self.linear(h).transpose(1, 2)

    # -- streaming --------------------------------------------------------------------------
    def initial_state(self, cond: Tensor) -> Tensor:
        """Zero hidden state, as at the start of :meth:`forward`."""
        return torch.zeros(1, cond.shape[0], self.gru.hidden_size, dtype=cond.dtype, device=cond.device)

    @torch.no_grad()
    def step(self, x: Tensor, cond: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One block ``x [batch, 1, S]`` continuing from hidden ``state [1, batch, hidden]``.

        Runs the numba sample loop :func:`gru_sequence` in float64 (PyTorch's CPU GRU steps
        through ATen once per sample and is ~20× slower for 8 hidden units)."""
        gru = self.gru
        weights = [t.detach().double().cpu().numpy() for t in (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]
        w_out = self.linear.weight.detach().double().cpu().numpy()[0]
        b_out = float(self.linear.bias.detach()[0])
        controls = cond.detach().double().cpu().numpy() if self.conditioned else np.zeros((x.shape[0], 0))
        signal = x.detach().double().cpu().numpy()[:, 0, :]
        h = state.detach().double().cpu().numpy()[0].copy()
        y = np.empty_like(signal)
        for b in range(signal.shape[0]):
            gru_sequence(signal[b], controls[b], *weights, w_out, b_out, h[b], y[b])
        as_tensor = lambda a: torch.from_numpy(a).to(dtype=x.dtype, device=x.device)  # noqa: E731
        return as_tensor(y).unsqueeze(1), as_tensor(h).unsqueeze(0)


@kernel
def gru_sequence(x, controls, w_ih, w_hh, b_ih, b_hh, w_out, b_out, h, out):
    """``out[t] = x[t] + w_out·h[t] + b_out`` with the PyTorch GRU update of ``h`` (in place) on
    the input ``[x[t], controls...]``; the reference loop for a C++ port."""
    hidden = h.shape[0]
    inputs = 1 + controls.shape[0]
    gi = np.empty(3 * hidden)
    gh = np.empty(3 * hidden)
    for t in range(x.shape[0]):
        for j in range(3 * hidden):
            acc_i = b_ih[j] + w_ih[j, 0] * x[t]
            for k in range(1, inputs):
                acc_i += w_ih[j, k] * controls[k - 1]
            acc_h = b_hh[j]
            for k in range(hidden):
                acc_h += w_hh[j, k] * h[k]
            gi[j] = acc_i
            gh[j] = acc_h
        acc = b_out
        for j in range(hidden):
            r = 1.0 / (1.0 + math.exp(-(gi[j] + gh[j])))
            z = 1.0 / (1.0 + math.exp(-(gi[hidden + j] + gh[hidden + j])))
            n = math.tanh(gi[2 * hidden + j] + r * gh[2 * hidden + j])
            h[j] = (1.0 - z) * n + z * h[j]
            acc += w_out[j] * h[j]
        out[t] = x[t] + acc


def gru_weights_dict(model: GRUStage) -> dict[str, list]:
    """Raw weights for a C++ port, as nested float lists (row-major, PyTorch layout).

    ``weight_ih`` is [3·hidden, inputs] and ``weight_hh`` [3·hidden, hidden], rows stacked in gate
    order r, z, n; ``inputs`` lists the input features in order; output = x + linear_weight·h + linear_bias.
    """
    gru = model.gru
    return {
        "inputs": ["x", "limit", "peak_reduction/100"][: gru.input_size],
        "gate_order": ["r", "z", "n"],
        "hidden_size": [gru.hidden_size],
        "weight_ih": gru.weight_ih_l0.detach().double().tolist(),
        "weight_hh": gru.weight_hh_l0.detach().double().tolist(),
        "bias_ih": gru.bias_ih_l0.detach().double().tolist(),
        "bias_hh": gru.bias_hh_l0.detach().double().tolist(),
        "linear_weight": model.linear.weight.detach().double().reshape(-1).tolist(),
        "linear_bias": model.linear.bias.detach().double().tolist(),
    }
