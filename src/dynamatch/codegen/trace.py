"""Trace a family member's per-sample equations into a straight-line program of sympy assignments.

The model's ``step`` (see :mod:`dynamatch.models.family`) runs once with :class:`SymbolicOps`: every
``ops.let`` becomes one assignment ``symbol = expression`` whose expression refers only to parameters,
previous states, the per-sample inputs and earlier assignments.  ``where`` becomes a ``Piecewise``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import sympy as sp

from ..models.family import ModelSpec

INPUTS = ("x", "level_log")  # per-sample inputs: the detector sample and ln max(|x|, eps)
PREVIOUS = "_prev"  # suffix of a state's value from the previous sample


class SymbolicOps:
    """The ``ops`` of :mod:`dynamatch.models.blocks`, recording assignments."""

    exp = staticmethod(sp.exp)
    log = staticmethod(sp.log)
    sqrt = staticmethod(sp.sqrt)

    @staticmethod
    def abs(value) -> sp.Expr:
        """|v| as branches, so that its derivative is a branch choice too."""
        return sp.Piecewise((value, value >= 0), (-value, True))

    def __init__(self, reserved: set[str]) -> None:
        self.assignments: list[tuple[sp.Symbol, sp.Expr]] = []
        self._taken = set(reserved)

    def let(self, name: str, value) -> sp.Expr:
        value = sp.sympify(value)
        if value.is_Number or value.is_Symbol:
            return value
        unique, k = name, 1
        while unique in self._taken:
            k += 1
            unique = f"{name}_{k}"
        self._taken.add(unique)
        symbol = sp.Symbol(unique, real=True)
        self.assignments.append((symbol, value))
        return symbol

    @staticmethod
    def where(condition, a, b) -> sp.Expr:
        return sp.Piecewise((sp.sympify(a), condition), (sp.sympify(b), True))


@dataclass(frozen=True)
class Program:
    """A traced member: parameters (kernel space, without make-up), states (the shared gain path's, then
    the per-channel output stage's), assignments, and outputs.

    ``assignments[:output_start]`` compute the (linked) ``gain`` from the detector sample; from
    ``output_start`` on they compute the per-channel prediction ``output`` from ``prediction = x * gain``
    (for members without an output stage ``output`` is that product)."""

    spec: ModelSpec
    parameters: tuple[sp.Symbol, ...]
    states: tuple[sp.Symbol, ...]  # previous-sample values, named <state>_prev
    inputs: tuple[sp.Symbol, ...]
    assignments: tuple[tuple[sp.Symbol, sp.Expr], ...]
    next_states: tuple[sp.Expr, ...]  # in ``states`` order
    gain: sp.Expr
    output: sp.Expr
    output_start: int
    gain_states: int  # states[:gain_states] belong to the gain path, the rest to the output stage

    @property
    def used_inputs(self) -> set[str]:
        used = set()
        for _, expression in self.assignments[: self.output_start]:
            used |= {s.name for s in expression.free_symbols}
        used |= {s.name for e in (*self.next_states[: self.gain_states], self.gain) for s in sp.sympify(e).free_symbols}
        return used & set(INPUTS)


def trace(spec: ModelSpec) -> Program:
    """Run ``spec.step`` (and ``spec.output``) on symbols."""
    names = list(spec.states) + list(spec.output_states)
    parameters = tuple(sp.Symbol(name, real=True) for name in spec.kernel_names)
    states = tuple(sp.Symbol(name + PREVIOUS, real=True) for name in names)
    inputs = tuple(sp.Symbol(name, real=True) for name in INPUTS)
    ops = SymbolicOps({s.name for s in (*parameters, *states, *inputs)})
    q = SimpleNamespace(**{s.name: s for s in parameters})
    previous = dict(zip(names, states))
    new_states, gain = spec.step(ops, q, SimpleNamespace(**{n: previous[n] for n in spec.states}), inputs[0], inputs[1])
    _check_states(spec, new_states, spec.states, "step")
    output_start = len(ops.assignments)
    output = ops.let("prediction", inputs[0] * gain)
    if spec.output is not None:
        output_states, output = spec.output(ops, q, SimpleNamespace(**{n: previous[n] for n in spec.output_states}), output)
        _check_states(spec, output_states, spec.output_states, "output")
        new_states = {**new_states, **output_states}
    return Program(spec, parameters, states, inputs, tuple(ops.assignments),
                   tuple(sp.sympify(new_states[name]) for name in names), sp.sympify(gain), sp.sympify(output),
                   output_start, len(spec.states))


def _check_states(spec: ModelSpec, returned: dict, declared: dict, part: str) -> None:
    if set(returned) != set(declared):
        raise ValueError(f"{spec.name}: {part} returned states {sorted(returned)}, declared {sorted(declared)}")
