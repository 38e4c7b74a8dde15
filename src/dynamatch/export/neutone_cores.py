"""TorchScript cores of the Neutone export: stateful, block-by-block, mono; torch imported at the top.

Every core has ``forward(x [channels, samples], controls: List[float]) -> [channels, samples]`` (mono; the
compressor cores also take stereo, linked) (the controls in real
units, as :func:`dynamatch.export.neutone.export_neutone` lays them out), ``reset()`` (back to the rest
state, as at the start of a signal) and ``set_sample_rate(hz)``.  State is carried across blocks, so
consecutive blocks give the output of one whole-signal render.

* :func:`compressor_core` — a family member with a knob → parameter map evaluated inside the model
  (piecewise cubics in real units, clamped to the knots, then to valid ranges, then to kernel space at the
  current sample rate), rendered by the member's generated loop (:mod:`dynamatch.export.torchscript`)
  in float64; a fixed compressor is a one-knot map whose overridden parameters come from the controls.
* :class:`LSTMCore`, :class:`GRUCore` — LSTM-32 / the 4A-2A-G GRU stage (hidden state carried), optionally after a
  compressor core (the hybrid: the compressor at make-up 0 dB feeds the GRU).
* :class:`TCNCore` — micro-TCN with one input history per layer (as :meth:`dynamatch.neural.tcn.TCN.step`).
* :class:`S4Core` — S4 DRC, the block recurrence in closed form (as :meth:`dynamatch.neural.s4.S4Model.step`).
"""


import importlib
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..maps.parameter_map import ParameterMap
from ..models.family import model_spec
from ..models.parameters import MODES

KIND_CODES = {"db": 0, "ratio": 1, "time": 2, "hz": 3, "share": 4}
MODE_INDEX = {"compress": 0, "limit": 1}


def _member_render(model: str):
    """The generated mono and stereo-linked loops and the rest states of family member ``model``."""
    module = importlib.import_module(f"{__package__}.torchscript.{model_spec(model).module_name}")
    return module.render, module.render_stereo, list(module.REST_STATE), list(module.OUTPUT_REST_STATE)


def compressor_core(parameter_map: ParameterMap, overrides: Sequence[int] = (), zero_makeup: bool = False,
                    sample_rate: float = 44100.0) -> nn.Module:
    """A scriptable core for ``parameter_map`` (both modes; a missing mode uses the other's table).

    ``controls = [knob, limit (0/1), *override values]``: the knob value in the map's knob units,
    then the real-unit values of the parameters with indices ``overrides`` (replacing the map's).
    """
    render, render_stereo, rest, output_rest = _member_render(parameter_map.model)
    spec = model_spec(parameter_map.model)
    names = parameter_map.parameter_names
    breakpoints: List[List[float]] = []
    coefficients: List[List[List[float]]] = []
    for mode in MODES:
        source = mode if mode in parameter_map.modes else next(iter(parameter_map.modes))
        segments = parameter_map.spline_segments(source)
        breakpoints.append([float(v) for v in segments["breakpoints"]])
        count = segments[names[0]].shape[1]
        coefficients.append([[float(segments[n][r, k]) for n in names for r in range(4)] for k in range(count)])

    class CompressorCore(nn.Module):
        """A knob-controlled compressor (see :func:`compressor_core`)."""

        state: List[float]
        output_state: List[float]
        output_state_right: List[float]
        rest_state: List[float]
        output_rest_state: List[float]
        breakpoints: List[List[float]]
        coefficients: List[List[List[float]]]
        kinds: List[int]
        overrides: List[int]

        def __init__(self) -> None:
            super().__init__()
            self.breakpoints = breakpoints
            self.coefficients = coefficients
            self.kinds = [KIND_CODES[p.kind] for p in spec.parameters]
            self.overrides = [int(i) for i in overrides]
            self.zero_makeup = bool(zero_makeup)
            self.sample_rate = float(sample_rate)
            self.rest_state = rest
            self.output_rest_state = output_rest
            self.state = list(rest)
            self.output_state = list(output_rest)
            self.output_state_right = list(output_rest)

        @torch.jit.export
        def reset(self) -> None:
            self.state = [v for v in self.rest_state]
            self.output_state = [v for v in self.output_rest_state]
            self.output_state_right = [v for v in self.output_rest_state]

        @torch.jit.export
        def set_sample_rate(self, sample_rate: float) -> None:
            self.sample_rate = float(sample_rate)

        @torch.jit.export
        def parameters_at(self, knob: float, mode: int) -> List[float]:
            """The map's real-unit parameters at ``knob`` (clamped to the knots) in ``mode`` (0/1)."""
            knots = self.breakpoints[mode]
            value = min(max(knob, knots[0]), knots[-1])
            segment = 0
            for k in range(1, len(knots) - 1):
                if value >= knots[k]:
                    segment = k
            d = value - knots[segment]
            c = self.coefficients[mode][segment]
            out: List[float] = []
            for j in range(len(self.kinds)):
                out.append(((c[4 * j] * d + c[4 * j + 1]) * d + c[4 * j + 2]) * d + c[4 * j + 3])
            return out

        def forward(self, x: Tensor, controls: List[float]) -> Tensor:
            mode = 1 if controls[1] >= 0.5 else 0
            values = self.parameters_at(controls[0], mode)
            for k in range(len(self.overrides)):
                values[self.overrides[k]] = controls[2 + k]
            q: List[float] = []
            for j in range(len(self.kinds) - 1):  # make-up (last) is applied outside the loop
                v = values[j]
                kind = self.kinds[j]
                if kind == 1:
                    v = max(v, 1.0)
                elif kind == 2:
                    v = -math.expm1(-2200.0 / (max(v, 1e-3) * self.sample_rate))
                elif kind == 3:
                    v = -math.expm1(-2.0 * math.pi * max(v, 0.0) / self.sample_rate)
                elif kind == 4:
                    v = min(max(v, 0.0), 1.0)
                q.append(v)
            makeup = 1.0 if self.zero_makeup else 10.0 ** (values[len(values) - 1] / 20.0)
            if x.shape[0] == 2:  # stereo-linked
                left: List[float] = x[0].double().tolist()
                right: List[float] = x[1].double().tolist()
                y_left, y_right = render_stereo(left, right, q, self.state, self.output_state, self.output_state_right)
                return (torch.tensor([y_left, y_right], dtype=torch.float64) * makeup).to(x.dtype)
            samples: List[float] = x.reshape(-1).double().tolist()
            y = render(samples, q, self.state, self.output_state)
            return (torch.tensor(y, dtype=torch.float64) * makeup).to(x.dtype).reshape(1, -1)

    return CompressorCore()


class PassThrough(nn.Module):
    """The identity with a core's interface (a recurrent core without a compressor before it)."""

    @torch.jit.export
    def reset(self) -> None:
        pass

    @torch.jit.export
    def set_sample_rate(self, sample_rate: float) -> None:
        pass

    def forward(self, x: Tensor, controls: List[float]) -> Tensor:
        return x


class _RecurrentBase(nn.Module):
    """Shared parts of the recurrent cores: the compressor before the network and the conditioning."""

    def __init__(self, model: nn.Module, rnn: nn.Module, compressor: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.rnn = rnn
        self.linear = model.linear
        self.conditioned = bool(getattr(model, "conditioned", True))
        self.compressor = compressor if compressor is not None else PassThrough()
        self.register_buffer("h", torch.zeros(1, 1, rnn.hidden_size))
        self.register_buffer("c", torch.zeros(1, 1, rnn.hidden_size))

    @torch.jit.export
    def reset(self) -> None:
        self.h.zero_()
        self.c.zero_()
        self.compressor.reset()

    @torch.jit.export
    def set_sample_rate(self, sample_rate: float) -> None:
        self.compressor.set_sample_rate(sample_rate)

    def _inputs(self, x: Tensor, controls: List[float]) -> Tuple[Tensor, Tensor]:
        u = self.compressor(x, controls).reshape(1, -1, 1).to(self.h.dtype)
        if not self.conditioned:
            return u, u
        cond = torch.tensor([1.0 if controls[1] >= 0.5 else 0.0, controls[0] / 100.0], dtype=u.dtype)
        return u, torch.cat([u, cond.view(1, 1, 2).expand(1, u.shape[1], 2)], dim=-1)


class GRUCore(_RecurrentBase):
    """The 4A-2A-G GRU stage ``u + Linear(h)``, after a compressor core (the hybrid) or alone."""

    def __init__(self, model: nn.Module, compressor: Optional[nn.Module] = None) -> None:
        super().__init__(model, model.gru, compressor)

    def forward(self, x: Tensor, controls: List[float]) -> Tensor:
        u, inputs = self._inputs(x, controls)
        h, hn = self.rnn(inputs, self.h)
        self.h.copy_(hn)
        return (u + self.linear(h)).reshape(1, -1).to(x.dtype)


class LSTMCore(_RecurrentBase):
    """LSTM-32: ``tanh(Linear(h))`` over ``[x, limit, knob/100]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, model.lstm, None)

    def forward(self, x: Tensor, controls: List[float]) -> Tensor:
        u, inputs = self._inputs(x, controls)
        h, (hn, cn) = self.rnn(inputs, (self.h, self.c))
        self.h.copy_(hn)
        self.c.copy_(cn)
        return torch.tanh(self.linear(h)).reshape(1, -1).to(x.dtype)


class TCNCore(nn.Module):
    """micro-TCN streamed with one input history per layer; output delayed by ``lookahead_samples``."""

    histories: List[Tensor]

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.conditioning = model.conditioning
        self.blocks = model.blocks
        self.output = model.output
        self.spans = [int(b.span_samples) for b in model.blocks]
        self.lookahead_samples = int(model.lookahead_samples)
        self.histories = []
        self.needs_reset = True

    @torch.jit.export
    def reset(self) -> None:
        self.needs_reset = True

    @torch.jit.export
    def set_sample_rate(self, sample_rate: float) -> None:
        pass

    def _initial(self, embedding: Tensor) -> List[Tensor]:
        """Histories after silence (as :meth:`TCN.initial_state`)."""
        out: List[Tensor] = []
        h = torch.zeros(1, 1, 1, dtype=embedding.dtype)
        for i, block in enumerate(self.blocks):
            span = self.spans[i]
            out.append(h.expand(1, h.shape[1], span).clone())
            h = block(h.expand(1, h.shape[1], span + 1), embedding)
        return out

    def forward(self, x: Tensor, controls: List[float]) -> Tensor:
        cond = torch.tensor([[1.0 if controls[1] >= 0.5 else 0.0, controls[0] / 100.0]], dtype=torch.float32)
        embedding = self.conditioning(cond)
        if self.needs_reset or len(self.histories) != len(self.spans):
            self.histories = self._initial(embedding)
            self.needs_reset = False
        h = x.reshape(1, 1, -1).to(torch.float32)
        new: List[Tensor] = []
        for i, block in enumerate(self.blocks):
            h = torch.cat([self.histories[i], h], dim=-1)
            new.append(h[:, :, h.shape[-1] - self.spans[i]:])
            h = block(h, embedding)
        self.histories = new
        return torch.tanh(self.output(h)).reshape(1, -1).to(x.dtype)


class S4Core(nn.Module):
    """S4 DRC streamed block by block (as :meth:`dynamatch.neural.s4.S4Model.step`) with the complex SSM
    states carried as float64 real and imaginary parts; the per-block-size tables are rebuilt when the block
    size changes (a host keeps one size)."""

    d: List[Tensor]
    dta_re: List[Tensor]
    dta_im: List[Tensor]
    w_re: List[Tensor]
    w_im: List[Tensor]
    z_re: List[Tensor]
    z_im: List[Tensor]
    tables: List[List[Tensor]]

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.conditioning = model.conditioning
        self.input = model.input
        self.blocks = model.blocks
        self.output = model.output
        self.dta_re, self.dta_im, self.w_re, self.w_im = [], [], [], []
        with torch.no_grad():
            for block in model.blocks:
                dta_re, dta_im, w_re, w_im = block.ssm.discretize()
                self.dta_re.append(dta_re.clone())
                self.dta_im.append(dta_im.clone())
                self.w_re.append(w_re.clone())
                self.w_im.append(w_im.clone())
        self.d = [block.ssm.d.detach().clone() for block in model.blocks]
        self.z_re = [torch.zeros(1, t.shape[0], t.shape[1], dtype=torch.float64) for t in self.dta_re]
        self.z_im = [torch.zeros(1, t.shape[0], t.shape[1], dtype=torch.float64) for t in self.dta_re]
        self.tables = []
        self.table_samples = -1

    @torch.jit.export
    def reset(self) -> None:
        for i in range(len(self.z_re)):
            self.z_re[i] = torch.zeros_like(self.z_re[i])
            self.z_im[i] = torch.zeros_like(self.z_im[i])

    @torch.jit.export
    def set_sample_rate(self, sample_rate: float) -> None:
        pass

    def _build_tables(self, samples: int) -> None:
        """Per block: kernel spectrum, Ā^{t+1} (re, im), w·Ā^{S−1−k} (re, im), Ā^S (re, im)."""
        tables: List[List[Tensor]] = []
        j = torch.arange(samples + 1, dtype=torch.float64)
        for i in range(len(self.dta_re)):
            magnitude = torch.exp(self.dta_re[i].unsqueeze(-1) * j)
            angle = self.dta_im[i].unsqueeze(-1) * j
            p_re, p_im = magnitude * torch.cos(angle), magnitude * torch.sin(angle)  # Ā^j
            w_re, w_im = self.w_re[i].unsqueeze(-1), self.w_im[i].unsqueeze(-1)
            kernel = 2.0 * (w_re * p_re[..., :samples] - w_im * p_im[..., :samples]).sum(dim=1)
            spectrum = torch.fft.rfft(kernel.to(torch.float32), n=2 * samples)
            flip_re, flip_im = p_re[..., :samples].flip(-1), p_im[..., :samples].flip(-1)
            tables.append([spectrum, p_re[..., 1:], p_im[..., 1:], w_re * flip_re - w_im * flip_im,
                           w_re * flip_im + w_im * flip_re, p_re[..., samples], p_im[..., samples]])
        self.tables = tables
        self.table_samples = samples

    def forward(self, x: Tensor, controls: List[float]) -> Tensor:
        samples = x.shape[-1]
        if samples != self.table_samples:
            self._build_tables(samples)
        cond = torch.tensor([[1.0 if controls[1] >= 0.5 else 0.0, controls[0] / 100.0]], dtype=torch.float32)
        embedding = self.conditioning(cond)
        h = self.input(x.reshape(1, 1, -1).to(torch.float32))
        for i, block in enumerate(self.blocks):
            table = self.tables[i]
            u = block.act_in(block.linear(h))
            y = torch.fft.irfft(torch.fft.rfft(u, n=2 * samples) * table[0], n=2 * samples)[..., :samples]
            z_re, z_im = self.z_re[i], self.z_im[i]
            y = y + (2.0 * (torch.einsum("hnt,bhn->bht", table[1], z_re)
                            - torch.einsum("hnt,bhn->bht", table[2], z_im))).to(y.dtype)
            u64 = u.to(torch.float64)
            drive_re = torch.einsum("hnk,bhk->bhn", table[3], u64)
            drive_im = torch.einsum("hnk,bhk->bhn", table[4], u64)
            decay_re, decay_im = table[5], table[6]
            self.z_re[i] = decay_re * z_re - decay_im * z_im + drive_re
            self.z_im[i] = decay_re * z_im + decay_im * z_re + drive_im
            s = y + self.d[i].unsqueeze(-1) * u
            h = block.act_out(block.film(block.norm(s), embedding)) + block.residual.weight.view(1, -1, 1) * h
        return torch.tanh(self.output(h)).reshape(1, -1).to(x.dtype)
