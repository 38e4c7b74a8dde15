"""S4 DRC (Yin et al. 2024): a conditioned stack of diagonal state-space (S4D) layers.

Diagonal SSM, per channel ``h`` and mode ``n`` (N complex modes, the conjugate pair folded into a
factor 2):  ``A = −exp(a_re) + iπn``, step ``Δ = exp(log_dt)``, zero-order hold
``Ā = exp(ΔA)``, ``B̄ = (Ā − 1)/A · B``.  With the state ``z = C·s`` the recurrence is

    z[t] = Ā z[t−1] + (C B̄) u[t],        y[t] = 2·Re Σ_n z_n[t] + D u[t],

which unrolls to the causal convolution ``y = K * u + D u`` with ``K[k] = 2·Re Σ_n C B̄ Ā^k``.
Training (:meth:`DiagonalSSM.forward`) convolves with K by FFT; streaming (:meth:`DiagonalSSM.step`)
solves the recurrence in closed form over each block and carries the complex state ``z``;
:meth:`DiagonalSSM.recurrence` is the literal sample loop.  The kernel and the powers of Ā are
computed in float64 (angles ``πnΔk`` grow with k) and cast to the signal's dtype.

Block: ``Linear → PReLU → SSM → BatchNorm(affine=False) → FiLM → PReLU`` plus a depthwise
1×1 residual; the model is ``Linear(1→C) → blocks → Linear(C→1) → tanh`` (s4-c32-f4: ≈ 17.6 k parameters).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .conditioning import ChannelLinear, ConditioningMLP, FiLM


class DiagonalSSM(nn.Module):
    """S4D layer on ``[batch, channels, samples]``; causal; per-channel skip ``D``."""

    def __init__(self, channels: int, modes: int = 4, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.log_a_real = nn.Parameter(torch.full((channels, modes), math.log(0.5)))
        self.b = nn.Parameter(torch.stack([torch.ones(channels, modes), torch.zeros(channels, modes)], -1))
        self.c = nn.Parameter(torch.randn(channels, modes, 2) * math.sqrt(0.5))
        self.d = nn.Parameter(torch.randn(channels))

    def discretize(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """float64 ``(ΔA_re, ΔA_im, w_re, w_im)`` with ``w = C·B̄``, each [channels, modes]."""
        dt = torch.exp(self.log_dt.double()).unsqueeze(-1)
        a_re = -torch.exp(self.log_a_real.double())
        a_im = math.pi * torch.arange(a_re.shape[1], dtype=torch.float64, device=a_re.device).expand_as(a_re)
        dta_re, dta_im = dt * a_re, dt * a_im
        decay = torch.exp(dta_re)
        num_re, num_im = decay * torch.cos(dta_im) - 1.0, decay * torch.sin(dta_im)  # Ā − 1
        norm = a_re * a_re + a_im * a_im
        q_re, q_im = (num_re * a_re + num_im * a_im) / norm, (num_im * a_re - num_re * a_im) / norm  # (Ā−1)/A
        b, c = self.b.double(), self.c.double()
        bbar_re, bbar_im = q_re * b[..., 0] - q_im * b[..., 1], q_re * b[..., 1] + q_im * b[..., 0]
        w_re = c[..., 0] * bbar_re - c[..., 1] * bbar_im
        w_im = c[..., 0] * bbar_im + c[..., 1] * bbar_re
        return dta_re, dta_im, w_re, w_im

    def kernel(self, samples: int) -> Tensor:
        """``K[channels, samples]`` (float64): ``K[k] = 2·Re Σ_n w_n Ā_n^k``."""
        dta_re, dta_im, w_re, w_im = self.discretize()
        k = torch.arange(samples, dtype=torch.float64, device=dta_re.device)
        decay = torch.exp(dta_re.unsqueeze(-1) * k)
        angle = dta_im.unsqueeze(-1) * k
        terms = decay * (w_re.unsqueeze(-1) * torch.cos(angle) - w_im.unsqueeze(-1) * torch.sin(angle))
        return 2.0 * terms.sum(dim=1)

    def forward(self, u: Tensor) -> Tensor:
        """Causal FFT convolution with the kernel plus ``D·u``."""
        samples = u.shape[-1]
        n_fft = 2 * samples
        k = self.kernel(samples).to(u.dtype)
        y = torch.fft.irfft(torch.fft.rfft(u, n=n_fft) * torch.fft.rfft(k, n=n_fft), n=n_fft)
        return y[..., :samples] + self.d.unsqueeze(-1) * u

    # -- recurrent form ---------------------------------------------------------------------
    def initial_state(self, batch: int, dtype: torch.dtype) -> Tensor:
        """Zero complex state ``z [batch, channels, modes]``."""
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return torch.zeros(batch, self.d.shape[0], self.log_a_real.shape[1], dtype=complex_dtype, device=self.d.device)

    @torch.no_grad()
    def block_tables(self, samples: int, dtype: torch.dtype) -> dict[str, Tensor]:
        """What :meth:`step` needs for blocks of ``samples``, computed once per block size:
        the kernel's spectrum, ``Ā^{t+1}`` (state → output), ``w·Ā^{S−1−k}`` (input → state), ``Ā^S``."""
        dta_re, dta_im, w_re, w_im = self.discretize()
        j = torch.arange(samples + 1, dtype=torch.float64, device=dta_re.device)
        power = torch.exp(torch.complex(dta_re, dta_im).unsqueeze(-1) * j)  # Ā^j, j = 0…S
        w = torch.complex(w_re, w_im)
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        kernel = 2.0 * (w.unsqueeze(-1) * power[..., :samples]).real.sum(dim=1)
        return {
            "kernel_spectrum": torch.fft.rfft(kernel.to(dtype), n=2 * samples),
            "state_to_output": power[..., 1:].to(complex_dtype),
            "input_to_state": (w.unsqueeze(-1) * power[..., :samples].flip(-1)).to(complex_dtype),
            "decay": power[..., samples].to(complex_dtype),
            "w": w.to(complex_dtype),
            "a_bar": power[..., 1].to(complex_dtype),
        }

    @torch.no_grad()
    def step(self, u: Tensor, state: Tensor, tables: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The recurrence over one block ``u [batch, channels, S]`` in closed form:
        ``y[t] = (K * u)[t] + 2·Re Σ_n Ā^{t+1} z_n + D u[t]``, ``z ← Ā^S z + Σ_k Ā^{S−1−k} w u[k]``.
        ``tables = self.block_tables(S, u.dtype)``."""
        samples = u.shape[-1]
        n_fft = 2 * samples
        y = torch.fft.irfft(torch.fft.rfft(u, n=n_fft) * tables["kernel_spectrum"], n=n_fft)[..., :samples]
        y = y + 2.0 * torch.einsum("hnt,bhn->bht", tables["state_to_output"], state).real
        drive = torch.einsum("hnk,bhk->bhn", tables["input_to_state"], u.to(state.dtype))
        return y + self.d.unsqueeze(-1) * u, tables["decay"] * state + drive

    @torch.no_grad()
    def recurrence(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """The literal sample loop ``z ← Ā z + w u[t]; y[t] = 2·Re Σ z + D u[t]`` (slow; a reference)."""
        tables = self.block_tables(1, u.dtype)
        a_bar, w = tables["a_bar"], tables["w"]
        outputs = []
        z = state
        for t in range(u.shape[-1]):
            z = a_bar * z + w * u[:, :, t : t + 1].to(w.dtype)
            outputs.append(2.0 * z.real.sum(dim=-1).to(u.dtype))
        return torch.stack(outputs, dim=-1) + self.d.unsqueeze(-1) * u, z


class S4Block(nn.Module):
    """``Linear → PReLU → S4D → BatchNorm → FiLM → PReLU`` + depthwise 1×1 residual."""

    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        self.linear = ChannelLinear(channels, channels)
        self.act_in = nn.PReLU(channels)
        self.ssm = DiagonalSSM(channels, modes)
        self.norm = nn.BatchNorm1d(channels, affine=False)
        self.film = FiLM(channels)
        self.act_out = nn.PReLU(channels)
        self.residual = nn.Conv1d(channels, channels, 1, groups=channels, bias=False)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.ssm(self.act_in(self.linear(x)))
        return self.act_out(self.film(self.norm(h), embedding)) + self.residual.weight.view(1, -1, 1) * x

    @torch.no_grad()
    def step(self, x: Tensor, embedding: Tensor, state: Tensor, tables: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, state = self.ssm.step(self.act_in(self.linear(x)), state, tables)
        return self.act_out(self.film(self.norm(h), embedding)) + self.residual.weight.view(1, -1, 1) * x, state


class S4Model(nn.Module):
    """``forward(x [batch, 1, samples], cond [batch, 2]) -> [batch, 1, samples]``; causal."""

    def __init__(self, channels: int = 32, blocks: int = 4, modes: int = 4) -> None:
        super().__init__()
        self.config = {"architecture": "s4", "channels": int(channels), "blocks": int(blocks), "modes": int(modes)}
        self.causal = True
        self.receptive_field_samples = 0
        self.conditioning = ConditioningMLP()
        self.input = ChannelLinear(1, channels)
        self.blocks = nn.ModuleList(S4Block(channels, modes) for _ in range(blocks))
        self.output = ChannelLinear(channels, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        embedding = self.conditioning(cond)
        h = self.input(x)
        for block in self.blocks:
            h = block(h, embedding)
        return torch.tanh(self.output(h))

    # -- streaming --------------------------------------------------------------------------
    def initial_state(self, cond: Tensor) -> list[Tensor]:
        """One zero complex state per block."""
        return [block.ssm.initial_state(cond.shape[0], cond.dtype) for block in self.blocks]

    @torch.no_grad()
    def step(
        self, x: Tensor, embedding: Tensor, state: list[Tensor], tables: list[dict[str, Tensor]]
    ) -> tuple[Tensor, list[Tensor]]:
        """One block ``x [batch, 1, S]``; ``tables[i] = blocks[i].ssm.block_tables(S, x.dtype)``."""
        h = self.input(x)
        new_state = []
        for block, z, table in zip(self.blocks, state, tables):
            h, z = block.step(h, embedding, z, table)
            new_state.append(z)
        return torch.tanh(self.output(h)), new_state

