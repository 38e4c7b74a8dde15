r"""Forward-mode differentiation of a traced program, to second order, by source transformation.

For each assignment :math:`v = f(a_1, \dots, a_k)` and kernel parameters :math:`\theta_i`:

.. math::

    v_i = \sum_a \frac{\partial f}{\partial a}\, a_i, \qquad
    v_{ij} = \sum_a \frac{\partial f}{\partial a}\, a_{ij}
           + \sum_{a,b} \frac{\partial^2 f}{\partial a\,\partial b}\, a_i\, b_j,

with :math:`\theta_{k,i} = \delta_{ki}`, inputs constant, and the previous states carrying their own
sensitivities from sample to sample (so every sensitivity recursion is one more assignment).  A
``Piecewise`` is differentiated branch by branch (the branch choice is locally constant; and a branch
that is not taken can never spill a NaN into the others).  Structural zeros are pruned: which
sensitivities of a state are non-zero is found by iterating the pass to a fixed point.  Inside a
derivative the assignment's own right-hand side is replaced by its symbol (so d e^u = e^u du reuses the
exponential already computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

import sympy as sp

from .trace import Program

Pair = tuple[int, int]


@dataclass(frozen=True)
class Statement:
    """One line of generated code: ``target = expression``; ``order`` 0 value, 1 first, 2 second derivative;
    ``output_stage``: part of the per-channel output stage (else of the shared gain path)."""

    target: sp.Symbol
    expression: sp.Expr
    order: int
    output_stage: bool = False


@dataclass(frozen=True)
class Derived:
    """The program with its sensitivities: statements in execution order and the sensitivities of every
    state and of the prediction ``output`` (index -> expression; absent = structurally zero)."""

    program: Program
    statements: tuple[Statement, ...]
    pairs: tuple[Pair, ...]  # every (i, j), i <= j, in the order of the objective's sums
    state_first: tuple[dict[int, sp.Expr], ...]  # per state, sensitivities of its *previous* value (symbols)
    state_second: tuple[dict[Pair, sp.Expr], ...]
    next_first: tuple[dict[int, sp.Expr], ...]  # per state, sensitivities of its new value
    next_second: tuple[dict[Pair, sp.Expr], ...]
    output_first: dict[int, sp.Expr]
    output_second: dict[Pair, sp.Expr]


def first_name(symbol: sp.Symbol, i: int) -> str:
    return f"{symbol.name}__d{i}"


def second_name(symbol: sp.Symbol, pair: Pair) -> str:
    return f"{symbol.name}__d{pair[0]}_{pair[1]}"


def differentiate(program: Program) -> Derived:
    """Forward-mode first and second derivatives of ``program`` with respect to its parameters."""
    n = len(program.parameters)
    pairs = tuple(combinations_with_replacement(range(n), 2))
    first_sparsity = [set() for _ in program.states]
    second_sparsity = [set() for _ in program.states]
    while True:
        result = _pass(program, pairs, first_sparsity, second_sparsity)
        grown = False
        for k in range(len(program.states)):
            new_first = first_sparsity[k] | set(result.next_first[k])
            new_second = second_sparsity[k] | set(result.next_second[k])
            if new_first != first_sparsity[k] or new_second != second_sparsity[k]:
                first_sparsity[k], second_sparsity[k], grown = new_first, new_second, True
        if not grown:
            return result


def _pass(program: Program, pairs, first_sparsity, second_sparsity) -> Derived:
    first: dict[sp.Symbol, dict[int, sp.Expr]] = {}
    second: dict[sp.Symbol, dict[Pair, sp.Expr]] = {}
    for i, p in enumerate(program.parameters):
        first[p] = {i: sp.Integer(1)}
        second[p] = {}
    for k, s in enumerate(program.states):
        first[s] = {i: sp.Symbol(first_name(s, i), real=True) for i in sorted(first_sparsity[k])}
        second[s] = {pq: sp.Symbol(second_name(s, pq), real=True) for pq in pairs if pq in second_sparsity[k]}
    statements: list[Statement] = []

    def emit(symbol, name, expression, order):
        expression = sp.sympify(expression)
        if expression == 0:
            return None
        if expression.is_Number or expression.is_Symbol:
            return expression
        target = sp.Symbol(name, real=True)
        statements.append(Statement(target, expression, order, stage))
        return target

    for index, (symbol, expression) in enumerate(program.assignments):
        stage = index >= program.output_start
        statements.append(Statement(symbol, expression, 0, stage))
        d1: dict[int, sp.Expr] = {}
        for i in range(len(program.parameters)):
            value = emit(symbol, first_name(symbol, i), _first(expression, symbol, i, first), 1)
            if value is not None:
                d1[i] = value
        first[symbol] = d1
        d2: dict[Pair, sp.Expr] = {}
        for pq in pairs:
            value = emit(symbol, second_name(symbol, pq), _second(expression, symbol, pq, first, second), 2)
            if value is not None:
                d2[pq] = value
        second[symbol] = d2

    def sensitivities_of(expression):
        expression = sp.sympify(expression)
        d1 = {i: e for i in range(len(program.parameters)) if (e := _first(expression, None, i, first)) != 0}
        d2 = {pq: e for pq in pairs if (e := _second(expression, None, pq, first, second)) != 0}
        return d1, d2

    next_first, next_second = zip(*(sensitivities_of(e) for e in program.next_states)) if program.states else ((), ())
    output_first, output_second = sensitivities_of(program.output)
    return Derived(
        program, tuple(statements), pairs,
        tuple(first[s] for s in program.states), tuple(second[s] for s in program.states),
        tuple(next_first), tuple(next_second), output_first, output_second,
    )


def _tracked(expression, i, first):
    return [a for a in sorted(expression.free_symbols, key=lambda s: s.name) if i in first.get(a, {})]


def _first(expression, symbol, i, first) -> sp.Expr:
    if isinstance(expression, sp.Piecewise):
        return _branchwise(expression, symbol, lambda e: _first(e, symbol, i, first))
    total = sp.Integer(0)
    for a in _tracked(expression, i, first):
        total += sp.diff(expression, a) * first[a][i]
    return _reuse(total, expression, symbol)


def _second(expression, symbol, pair, first, second) -> sp.Expr:
    if isinstance(expression, sp.Piecewise):
        return _branchwise(expression, symbol, lambda e: _second(e, symbol, pair, first, second))
    i, j = pair
    total = sp.Integer(0)
    for a in sorted(expression.free_symbols, key=lambda s: s.name):
        if pair in second.get(a, {}):
            total += sp.diff(expression, a) * second[a][pair]
    for a in _tracked(expression, i, first):
        for b in _tracked(expression, j, first):
            total += sp.diff(expression, a, b) * first[a][i] * first[b][j]
    return _reuse(total, expression, symbol)


def _branchwise(expression: sp.Piecewise, symbol, derivative) -> sp.Expr:
    branches = []
    for branch, condition in expression.args:
        d = derivative(branch)
        branches.append((_reuse(d, branch, symbol), condition))
    if all(d == 0 for d, _ in branches):
        return sp.Integer(0)
    return sp.Piecewise(*branches)


def _reuse(derivative: sp.Expr, value: sp.Expr, symbol) -> sp.Expr:
    """``derivative`` with the (non-trivial) ``value`` replaced by the symbol it is assigned to."""
    if symbol is None or derivative == 0 or value.is_Atom:
        return derivative
    return derivative.subs(value, symbol)
