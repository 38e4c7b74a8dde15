"""Write the numba module of one family member: render kernel and loss / gradient / Hessian kernels.

The generated objective kernels follow :mod:`dynamatch.kernels.objective`: the prediction ``u = x g`` and
every non-zero sensitivity ``u_i = x g_i``, ``u_ij = x g_ij`` go through the same first-order pre-filter
(transposed direct form II, one state each), and running sums over the counted samples give the loss,
its gradient and its Hessian in closed form (make-up included).  Per-sample values live in scalars.
"""

from __future__ import annotations

import re

import sympy as sp

from ..kernels.scalar import FLUSH_BELOW
from ..models.blocks import EPSILON
from .forward import Derived, Statement, first_name, second_name
from .printing import NumbaPrinter

INDENT = "    "


def _is_hoistable(statement: Statement, constant: set[sp.Symbol]) -> bool:
    return statement.expression.free_symbols <= constant


def split_prologue(derived: Derived, order: int) -> tuple[list[Statement], list[Statement]]:
    """Statements up to ``order``, split into loop-invariant ones (parameters only) and per-sample ones."""
    constant = set(derived.program.parameters)
    prologue, body = [], []
    for statement in derived.statements:
        if statement.order > order:
            continue
        if _is_hoistable(statement, constant):
            constant.add(statement.target)
            prologue.append(statement)
        else:
            body.append(statement)
    return prologue, body


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.printer = NumbaPrinter()

    def line(self, text: str = "", depth: int = 0) -> None:
        self.lines.append(INDENT * depth + text if text else "")

    def assign(self, target: str, expression, depth: int) -> None:
        self.line(f"{target} = {self.printer.doprint(sp.sympify(expression))}", depth)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _unpack_parameters(w: _Writer, derived: Derived, depth: int) -> None:
    for i, p in enumerate(derived.program.parameters):
        w.line(f"{p.name} = q[{i}]", depth)


#: Every ``FLUSH_PERIOD`` samples, carried values smaller than ``FLUSH_BELOW`` in magnitude are set to zero.
#: Decaying recursions (sensitivities through a release, the pre-filter's states below the threshold)
#: otherwise sink into subnormal numbers, which cost x86 cores ~100 cycles per operation (measured: the
#: ``level`` member's gradient pass 257 ns/sample instead of 18 with flush-to-zero).  Values this small
#: change no sum by a representable amount.
FLUSH_PERIOD = 64


def _carried_names(derived: Derived, order: int) -> list[str]:
    """Locals that carry a state (and its sensitivities up to ``order``) from sample to sample."""
    program = derived.program
    names = [s.name for s in program.states]
    if order >= 1:
        for k, s in enumerate(program.states):
            names += [first_name(s, i) for i in sorted(derived.state_first[k])]
    if order >= 2:
        for k, s in enumerate(program.states):
            names += [second_name(s, pair) for pair in derived.pairs if pair in derived.state_second[k]]
    return names


def _carry_states(w: _Writer, derived: Derived, order: int, depth: int) -> None:
    """``<state>_prev = <new value>`` (and sensitivities) at the end of a sample."""
    program = derived.program
    uses_previous = any(
        s in sp.sympify(e).free_symbols for e in program.next_states for s in program.states
    )
    targets = [(s.name, e) for s, e in zip(program.states, program.next_states)]
    if order >= 1:
        for k, s in enumerate(program.states):
            for i in sorted(derived.state_first[k]):
                targets.append((first_name(s, i), derived.next_first[k].get(i, 0)))
    if order >= 2:
        for k, s in enumerate(program.states):
            for pair in derived.pairs:
                if pair in derived.state_second[k]:
                    targets.append((second_name(s, pair), derived.next_second[k].get(pair, 0)))
    if uses_previous:  # a new value refers to an old one: compute all before overwriting any
        for k, (target, expression) in enumerate(targets):
            w.assign(f"carry_{k}", expression, depth)
        for k, (target, _) in enumerate(targets):
            w.line(f"{target} = carry_{k}", depth)
    else:
        for target, expression in targets:
            w.assign(target, expression, depth)


def _initial_states(w: _Writer, derived: Derived, order: int, depth: int) -> None:
    spec = derived.program.spec
    rests = [*spec.states.values(), *spec.output_states.values()]
    for k, (s, rest) in enumerate(zip(derived.program.states, rests)):
        w.line(f"{s.name} = {float(rest)!r}", depth)
        if order >= 1:
            for i in sorted(derived.state_first[k]):
                w.line(f"{first_name(s, i)} = 0.0", depth)
        if order >= 2:
            for pair in derived.pairs:
                if pair in derived.state_second[k]:
                    w.line(f"{second_name(s, pair)} = 0.0", depth)


def _emit_render(w: _Writer, derived: Derived) -> None:
    program = derived.program
    prologue, body = split_prologue(derived, 0)
    gain_path = [st for st in body if not st.output_stage]
    output_stage = [st for st in body if st.output_stage]
    gain_states = program.states[: program.gain_states]
    output_states = program.states[program.gain_states:]
    w.line("@kernel")
    w.line("def render(x, q, state, output_state, out, out_gain):")
    w.line('"""Render a block ``x`` (channels, samples) into ``out`` (same shape, before make-up) and its linked', 1)
    w.line("gain into ``out_gain`` (samples,); advances ``state`` (``REST_STATE``) and ``output_state``", 1)
    w.line("(channels, ``len(OUTPUT_STATES)``; rest ``OUTPUT_REST_STATE``) in place.  The detector sees, per", 1)
    w.line('sample, the channel sample of largest magnitude."""', 1)
    _unpack_parameters(w, derived, 1)
    for statement in prologue:
        w.assign(statement.target.name, statement.expression, 1)
    for k, s in enumerate(gain_states):
        w.line(f"{s.name} = state[{k}]", 1)
    w.line("channels = x.shape[0]", 1)
    w.line("for n in range(x.shape[1]):", 1)
    w.line("x_n = x[0, n]", 2)
    w.line("for c in range(1, channels):", 2)
    w.line("if abs(x[c, n]) > abs(x_n):", 3)
    w.line("x_n = x[c, n]", 4)
    if "level_log" in program.used_inputs:
        w.line(f"level_log_n = log(max(abs(x_n), {EPSILON!r}))", 2)
    for statement in gain_path:
        w.assign(statement.target.name, _inputs(statement.expression), 2)
    w.assign("gain_n", _inputs(program.gain), 2)
    w.line("out_gain[n] = gain_n", 2)
    for s, e in zip(gain_states, program.next_states[: program.gain_states]):
        w.assign(s.name, _inputs(e), 2)
    w.line("for c in range(channels):", 2)
    w.line("x_n = x[c, n]", 3)
    for k, s in enumerate(output_states):
        w.line(f"{s.name} = output_state[c, {k}]", 3)
    for statement in output_stage:
        w.assign(statement.target.name, _inputs(statement.expression), 3)
    w.assign("out[c, n]", _inputs(program.output), 3)
    for k, (s, e) in enumerate(zip(output_states, program.next_states[program.gain_states:])):
        w.assign(f"output_state[c, {k}]", _inputs(e), 3)
    _flush_lines(w, [s.name for s in gain_states], "n", 2)
    if output_states:
        w.line("for c in range(channels):", 3)
        w.line(f"for k in range({len(output_states)}):", 4)
        w.line(f"if abs(output_state[c, k]) < {FLUSH_BELOW!r}:", 5)
        w.line("output_state[c, k] = 0.0", 6)
    for k, s in enumerate(gain_states):
        w.line(f"state[{k}] = {s.name}", 1)
    w.line()
    w.line()


_X = sp.Symbol("x", real=True)
_X_N = sp.Symbol("x_n", real=True)
_LEVEL = sp.Symbol("level_log", real=True)
_LEVEL_N = sp.Symbol("level_log_n", real=True)


def _inputs(expression):
    """In the kernels the per-sample inputs are the locals ``x_n`` and ``level_log_n`` (the arrays are
    ``x`` and ``level_log``)."""
    return sp.sympify(expression).subs({_X: _X_N, _LEVEL: _LEVEL_N})


def _signals(derived: Derived, order: int) -> list[tuple[str, sp.Expr]]:
    """(suffix, expression) of the prediction and of its non-zero sensitivities up to ``order``."""
    n = len(derived.program.parameters)
    signals = [("", derived.program.output)]
    if order >= 1:
        signals += [(f"__d{i}", derived.output_first[i]) for i in range(n) if i in derived.output_first]
    if order >= 2:
        signals += [(f"__d{i}_{j}", derived.output_second[(i, j)]) for (i, j) in derived.pairs
                    if (i, j) in derived.output_second]
    return signals


def _sums(derived: Derived, order: int) -> list[tuple[str, str | None]]:
    """(name, summand) of every running sum in output order; ``None`` for a structurally zero sum."""
    n = len(derived.program.parameters)
    present = {suffix for suffix, _ in _signals(derived, order)}
    sums: list[tuple[str, str | None]] = [("sum_rr", "r * r"), ("sum_zz", "z * z"), ("sum_zt", "z * t_n"),
                                          ("sum_rz", "r * z")]
    if order >= 1:
        sums += [(f"sum_rz__d{i}", f"r * z__d{i}" if f"__d{i}" in present else None) for i in range(n)]
        sums += [(f"sum_zz__d{i}", f"z * z__d{i}" if f"__d{i}" in present else None) for i in range(n)]
    if order >= 2:
        sums += [(f"sum_zz__d{i}__d{j}", f"z__d{i} * z__d{j}" if {f"__d{i}", f"__d{j}"} <= present else None)
                 for i, j in derived.pairs]
        sums += [(f"sum_rz__d{i}_{j}", f"r * z__d{i}_{j}" if f"__d{i}_{j}" in present else None)
                 for i, j in derived.pairs]
    return sums


def _emit_sample(w: _Writer, derived: Derived, order: int, body: list[Statement], depth: int) -> None:
    """One sample of a chunk: the model, its sensitivities and the pre-filter of each signal (``z``)."""
    for statement in body:
        w.assign(statement.target.name, _inputs(statement.expression), depth)
    for suffix, expression in _signals(derived, order):
        w.line(f"u{suffix} = {w.printer.doprint(_inputs(sp.sympify(expression)))}", depth)
        w.line(f"z{suffix} = u{suffix} + w{suffix}", depth)
        w.line(f"w{suffix} = pole * z{suffix} - zero * u{suffix}", depth)


def _flushed_names(derived: Derived, order: int) -> list[str]:
    """Carried locals that the periodic flush sets to zero: the states, their sensitivities, the filters."""
    return _carried_names(derived, order) + [f"w{suffix}" for suffix, _ in _signals(derived, order)]


def _flush_lines(w: _Writer, names: list[str], index: str, depth: int) -> None:
    """The periodic flush of ``names`` (locals) to zero when ``index`` is a multiple of ``FLUSH_PERIOD``."""
    w.line(f"if ({index} & {FLUSH_PERIOD - 1}) == 0:", depth)
    for name in names:
        w.line(f"{name} = flushed({name})", depth + 1)


def _emit_chunk(w: _Writer, derived: Derived, order: int) -> None:
    """The one-chunk kernel of ``order``: loss (0), + gradient (1), + Hessian (2) sums into ``out``."""
    program = derived.program
    prologue, body = split_prologue(derived, order)
    name = ("_loss_chunk", "_gradient_chunk", "_hessian_chunk")[order]
    sums = _sums(derived, order)
    w.line("@kernel")
    w.line(f"def {name}(x, t, t_state, start, stop, count_from, q, makeup_gain, zero, pole, out):")
    _unpack_parameters(w, derived, 1)
    for statement in prologue:
        w.assign(statement.target.name, statement.expression, 1)
    _initial_states(w, derived, order, 1)
    for suffix, _ in _signals(derived, order):
        w.line(f"w{suffix} = 0.0", 1)
    for sum_name, _ in sums:
        w.line(f"{sum_name} = 0.0", 1)
    if "level_log" in program.used_inputs:  # the chunk's detector levels, one vectorised pass
        w.line("level_log = np.empty(stop - start)", 1)
        w.line("detector_levels(x, start, level_log)", 1)
    w.line("t_in_prev = t_state[0]  # the target's filter, resumed where the chunk starts counting", 1)
    w.line("t_n = t_state[1]", 1)

    w.line("for n in range(start, stop):", 1)
    w.line("x_n = x[n]", 2)
    if "level_log" in program.used_inputs:
        w.line("level_log_n = level_log[n - start]", 2)
    _emit_sample(w, derived, order, body, 2)
    w.line("if n >= count_from:", 2)
    w.line("t_in = t[n]", 3)
    w.line("t_n = t_in - zero * t_in_prev + pole * t_n", 3)
    w.line("t_in_prev = t_in", 3)
    w.line("r = makeup_gain * z - t_n", 3)
    for sum_name, summand in sums:
        if summand is not None:
            w.line(f"{sum_name} += {summand}", 3)
    _carry_states(_IndentedWriter(w, 2), derived, order, 0)
    _flush_lines(w, _flushed_names(derived, order), "(n - start)", 2)
    for k, (sum_name, _) in enumerate(sums):
        w.line(f"out[{k}] = {sum_name}", 1)
    w.line()
    w.line()


#: Chunks a lane kernel runs in lock step, one per SIMD lane (4 doubles: one AVX2 register; 8 lanes ran at
#: exactly half the speed per step on AVX2, so no faster per chunk).
LANES = 4
#: Samples whose inputs a lane kernel stages at a time (lane-minor, so each sample's loads are contiguous).
LANE_BLOCK = 256
#: Lane kernels pay for a load and a store of every carried value per sample; they win once a sample carries
#: at least this many values (measured on x86 cores, 1 thread, ns/sample, one-chunk kernel -> lanes: ff5
#: gradient, 10 carried, 12.1 -> 16.3; ff5 Hessian, 30 carried, 30.8 -> 19.3 (AVX-512) and 63.5 -> 31.8
#: (AVX2); opto gradient 65.6 -> 30.9 (AVX-512), 112 -> 41 (AVX2); opto Hessian 222 -> 92 (AVX-512),
#: 660 -> 354 (AVX2)).  A lane on its own runs 1.4-1.9x slower than the one-chunk kernel, so the one or two
#: chunks a signal has beyond its groups of ``LANES`` keep the one-chunk kernel.
LANE_MIN_CARRIED = 17


def uses_lanes(derived: Derived, order: int) -> bool:
    """Whether the objective pass of ``order`` runs chunks in lock-step lanes (see ``LANE_MIN_CARRIED``)."""
    return len(_flushed_names(derived, order)) >= LANE_MIN_CARRIED


def _emit_lanes(w: _Writer, derived: Derived, order: int) -> None:
    """The lane kernel of ``order``: chunks ``k0 .. k0 + lanes - 1`` (``lanes <= LANES``; idle lanes run on zeros).

    Every carried value of lane ``l`` lives at ``work[j * LANES + l]``, every sum at ``totals[k * LANES + l]``
    and the staged inputs at ``staged[row, l]``, so the loop over lanes is one SIMD loop (LLVM's loop
    vectoriser, see ``kernels._numba``).  A lane adds a sample's summands only where its chunk counts
    (``count_from <= n < stop``); past a shorter chunk's end it runs on zero input, counted nowhere.
    Per chunk the arithmetic is the one-chunk kernel's, in the same order.
    """
    program = derived.program
    prologue, body = split_prologue(derived, order)
    name = ("_loss_lanes", "_gradient_lanes", "_hessian_lanes")[order]
    sums = _sums(derived, order)
    carried = _flushed_names(derived, order)
    target_slots = len(carried)  # t_in_prev, t_n after the flushed values (the one-chunk kernel never flushes them)
    level = "level_log" in program.used_inputs
    staged = ["x_n", "t_in", "counts"] + (["level_log_n"] if level else [])
    w.line("@kernel")
    w.line(f"def {name}(x, t, t_states, k0, lanes, chunk_samples, warmup_samples, q, makeup_gain, zero, pole, out):")
    w.line('"""Sums of chunks ``k0 .. k0 + lanes - 1`` into ``out[k0 .. k0 + lanes - 1]``, in lock step."""', 1)
    _unpack_parameters(w, derived, 1)
    for statement in prologue:
        w.assign(statement.target.name, statement.expression, 1)
    w.line(f"work = np.empty({(len(carried) + 2) * LANES})", 1)
    w.line(f"totals = np.zeros({len(sums) * LANES})", 1)
    w.line(f"staged = np.empty(({len(staged) * LANE_BLOCK}, {LANES}))", 1)
    if level:
        w.line(f"levels = np.empty({LANE_BLOCK})", 1)
    w.line("total = x.shape[0]", 1)
    w.line("first_start, longest, _ = chunk_bounds(k0, total, chunk_samples, warmup_samples)", 1)
    w.line("longest -= first_start  # only the last chunk of a signal can be shorter", 1)
    w.line(f"for lane in range({LANES}):", 1)
    _initial_states(_IndentedWriter(w, 1), derived, order, 1)
    for suffix, _ in _signals(derived, order):
        w.line(f"w{suffix} = 0.0", 2)
    for j, carried_name in enumerate(carried):
        w.line(f"work[{j * LANES} + lane] = {carried_name}", 2)
    w.line(f"work[{target_slots * LANES} + lane] = t_states[k0 + lane, 0] if lane < lanes else 0.0", 2)
    w.line(f"work[{(target_slots + 1) * LANES} + lane] = t_states[k0 + lane, 1] if lane < lanes else 0.0", 2)

    w.line(f"for block in range(0, longest, {LANE_BLOCK}):", 1)
    w.line(f"block_samples = min({LANE_BLOCK}, longest - block)", 2)
    w.line(f"for lane in range({LANES}):", 2)
    w.line("start, stop, count_from = chunk_bounds(k0 + lane, total, chunk_samples, warmup_samples)", 3)
    w.line("present = min(max(stop - start - block, 0), block_samples) if lane < lanes else 0", 3)
    if level:
        w.line("detector_levels(x, start + block, levels[:present])", 3)
    w.line("for i in range(block_samples):", 3)
    w.line("n = start + block + i", 4)
    w.line("if i < present:", 4)
    stage_values = {"x_n": "x[n]", "t_in": "t[n]", "counts": "1.0 if n >= count_from else 0.0",
                    "level_log_n": "levels[i]"}
    for k, staged_name in enumerate(staged):
        w.line(f"staged[{k * LANE_BLOCK} + i, lane] = {stage_values[staged_name]}", 5)
    w.line("else:", 4)
    for k, staged_name in enumerate(staged):
        w.line(f"staged[{k * LANE_BLOCK} + i, lane] = 0.0", 5)

    w.line("for i in range(block_samples):", 2)
    w.line(f"for lane in range({LANES}):", 3)
    for k, staged_name in enumerate(staged):
        w.line(f"{staged_name} = staged[{k * LANE_BLOCK} + i, lane]", 4)
    w.line("counted = counts > 0.5", 4)
    for j, carried_name in enumerate(carried):
        w.line(f"{carried_name} = work[{j * LANES} + lane]", 4)
    w.line(f"t_in_prev = work[{target_slots * LANES} + lane]", 4)
    w.line(f"t_n = work[{(target_slots + 1) * LANES} + lane]", 4)
    _emit_sample(w, derived, order, body, 4)
    w.line("t_next = t_in - zero * t_in_prev + pole * t_n", 4)
    w.line("t_n = t_next if counted else t_n", 4)
    w.line("r = makeup_gain * z - t_n", 4)
    for k, (_, summand) in enumerate(sums):
        if summand is not None:
            w.line(f"totals[{k * LANES} + lane] += ({summand}) if counted else 0.0", 4)
    _carry_states(_IndentedWriter(w, 4), derived, order, 0)
    for j, carried_name in enumerate(carried):
        w.line(f"work[{j * LANES} + lane] = {carried_name}", 4)
    w.line(f"work[{target_slots * LANES} + lane] = t_in if counted else t_in_prev", 4)
    w.line(f"work[{(target_slots + 1) * LANES} + lane] = t_n", 4)
    w.line(f"if ((block + i) & {FLUSH_PERIOD - 1}) == 0:", 3)
    w.line(f"for j in range({target_slots * LANES}):", 4)
    w.line(f"if abs(work[j]) < {FLUSH_BELOW!r}:", 5)
    w.line("work[j] = 0.0", 6)
    w.line("for lane in range(lanes):", 1)
    w.line(f"for k in range({len(sums)}):", 2)
    w.line(f"out[k0 + lane, k] = totals[k * {LANES} + lane]", 3)
    w.line()
    w.line()


class _IndentedWriter:
    """A view of a writer that indents every line by ``depth``."""

    def __init__(self, writer: _Writer, depth: int) -> None:
        self.writer, self.depth, self.printer = writer, depth, writer.printer

    def line(self, text: str = "", depth: int = 0) -> None:
        self.writer.line(text, self.depth + depth)

    def assign(self, target: str, expression, depth: int) -> None:
        self.writer.assign(target, _inputs(expression), self.depth + depth)


def module_source(derived: Derived) -> str:
    """The complete source of ``dynamatch/kernels/generated/<model>.py``."""
    program = derived.program
    spec = program.spec
    n = len(program.parameters)
    w = _Writer()
    parameter_lines = "\n".join(f"    {i}  {p.kernel_name:<22} {p.name} ({p.kind})"
                                for i, p in enumerate(spec.parameters[:-1]))
    state_lines = "\n".join(f"    {name:<14} rest {rest!r}" for name, rest in spec.states.items())
    w.line(f'"""Kernels of the ``{spec.name}`` model: {spec.summary}.')
    w.line()
    w.line("GENERATED by ``python -m dynamatch.codegen`` from :mod:`dynamatch.models.family`; do not edit.")
    w.line()
    w.line("Kernel parameters ``q`` (make-up is applied outside, in closed form):")
    w.line()
    w.line(parameter_lines)
    w.line()
    w.line("States:")
    w.line()
    w.line(state_lines)
    w.line('"""')
    w.line()
    w.line("MATH_IMPORTS")
    w.line()
    w.line("import numba")
    w.line("import numpy as np")
    w.line()
    w.line("from .._numba import kernel")
    w.line("from ..chunks import chunk_bounds, chunk_count, lane_groups, sum_rows")
    w.line("from ..scalar import flushed, select")
    if "level_log" in program.used_inputs:
        w.line("from ..objective import detector_levels")
    w.line()
    w.line(f"MODEL = {spec.name!r}")
    w.line(f"KERNEL_PARAMETERS = {tuple(p.name for p in program.parameters)!r}")
    w.line(f"STATES = {tuple(spec.states)!r}")
    w.line(f"REST_STATE = {tuple(float(v) for v in spec.states.values())!r}")
    w.line(f"OUTPUT_STATES = {tuple(spec.output_states)!r}")
    w.line(f"OUTPUT_REST_STATE = {tuple(float(v) for v in spec.output_states.values())!r}")
    w.line(f"PAIRS = {derived.pairs!r}")
    w.line("LOSS_SUMS = 4")
    w.line(f"GRADIENT_SUMS = {4 + 2 * n}")
    w.line(f"HESSIAN_SUMS = {4 + 2 * n + 2 * len(derived.pairs)}")
    w.line()
    w.line()
    _emit_render(w, derived)
    lane_orders = [order for order in range(3) if uses_lanes(derived, order)]
    for order in range(3):
        _emit_chunk(w, derived, order)
    for order in lane_orders:
        _emit_lanes(w, derived, order)
    lane_calls = {order: f"{prefix}_lanes(x, t, t_states, k0, lanes, chunk_samples, warmup_samples, q, makeup_gain, "
                         "zero, pole, per_chunk)" for order, prefix in enumerate(("_loss", "_gradient", "_hessian"))}
    chunk_calls = [f"{prefix}_chunk(x, t, t_states[k], start, stop, count_from, q, makeup_gain, zero, pole, "
                   "per_chunk[k])" for prefix in ("_loss", "_gradient", "_hessian")]
    w.line("@kernel(parallel=True)")
    w.line("def chunked_sums(order, x, t, t_states, q, makeup_gain, chunk_samples, warmup_samples, zero, pole, threads):")
    w.line('"""Sums of the chunked prediction against the target ``t`` pre-filtered by the same filter, over chunks', 1)
    w.line("in parallel (``t_states[k]``: the filter's ``[t[i-1], H(t)[i-1]]`` where chunk ``k`` starts counting):", 1)
    w.line("``order`` 0 loss (``LOSS_SUMS``), 1 + gradient (``GRADIENT_SUMS``), 2 + Hessian (``HESSIAN_SUMS``).", 1)
    w.line(f"Orders {tuple(lane_orders)} run ``lane_groups`` groups of {LANES} chunks in lock-step lanes and the", 1)
    w.line("chunks beyond them one per task, the others one chunk per task; the tasks go round-robin to ``threads``", 1)
    w.line("workers (``numba.get_num_threads()`` of the caller: called inside a kernel it would keep numba from", 1)
    w.line('caching this one), and the sums are added in chunk order."""', 1)
    w.line("total = x.shape[0]", 1)
    w.line("chunks = chunk_count(total, chunk_samples, warmup_samples)", 1)
    w.line("width = LOSS_SUMS if order == 0 else (GRADIENT_SUMS if order == 1 else HESSIAN_SUMS)", 1)
    w.line("per_chunk = np.zeros((chunks, width))", 1)
    in_lanes = " or ".join(f"order == {o}" for o in lane_orders) or "False"
    w.line(f"groups = lane_groups(chunks, {LANES}) if ({in_lanes}) else 0", 1)
    w.line(f"singles = max(chunks - {LANES} * groups, 0)", 1)
    w.line("tasks = groups + singles", 1)
    w.line("workers = max(1, min(threads, tasks))", 1)
    w.line("for worker in numba.prange(workers):", 1)
    w.line("for task in range(worker, tasks, workers):", 2)
    w.line("if task < groups:", 3)
    w.line(f"k0 = {LANES} * task", 4)
    w.line(f"lanes = min({LANES}, chunks - k0)", 4)
    for k, order in enumerate(lane_orders):
        w.line(f"{'if' if k == 0 else 'elif'} order == {order}:", 4)
        w.line(lane_calls[order], 5)
    if not lane_orders:
        w.line("pass", 4)
    w.line("continue", 4)
    w.line(f"k = {LANES} * groups + task - groups", 3)
    w.line("start, stop, count_from = chunk_bounds(k, total, chunk_samples, warmup_samples)", 3)
    for order in range(3):
        w.line(f"{'if' if order == 0 else ('elif' if order == 1 else 'else')}"
               f"{f' order == {order}' if order < 2 else ''}:", 3)
        w.line(chunk_calls[order], 4)
    w.line("return sum_rows(per_chunk)", 1)
    text = w.text()
    used = [f for f in ("exp", "log", "sqrt") if re.search(rf"\b{f}\(", text)]
    return text.replace("MATH_IMPORTS", f"from math import {', '.join(used)}")
