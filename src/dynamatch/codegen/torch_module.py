r"""Write the torch objective of one family member (``dynamatch/kernels/torch_generated/<model>.py``).

The module computes the same sums as the numba objective kernels (:mod:`dynamatch.codegen.numba_module`)
for a batch of chunks, (chunks, samples) tensors on any device, in three phases:

1. **States.**  Each state's update, with every statement inlined, is checked to be affine in the
   state's own previous value once the branch conditions are fixed, :math:`s[n] = a[n]\,s[n-1] + b[n]`,
   with :math:`a, b` depending only on inputs, parameters and states earlier in the chain.  Then it is a
   one-pole scan, and the branches are found by fixed point (guess, scan, re-evaluate the branches from
   the scanned states, repeat until they no longer change: the fixed point is the sequential recursion).
   A member with a state that is not (the feedback detector reads :math:`\ln g[n-1]`), or whose states
   read each other's previous values in a cycle (``opto``: the panel light reads the reduction the cell
   makes; found structurally, before any costly algebra), runs its value statements in a sequential loop
   over the samples, batched over the chunks (in numpy on the CPU, where its many small operations cost
   ≈ 3× less than in torch; the same statements either way).
2. **Sensitivities.**  With the states known every value statement is evaluated over all samples at
   once.  The forward-mode sensitivity recursions of :mod:`dynamatch.codegen.forward` are linear in the
   carried sensitivities: :math:`s_k[n] = \sum_l A_{kl}[n]\,s_l[n-1] + B_k[n]`, with
   :math:`A_{kl} = \partial s_k[n]/\partial s_l[n-1]` the same for every right-hand side (each parameter,
   each pair; checked).  The states are split into strongly connected groups of that coupling (Tarjan),
   in an order where each group comes after the groups it reads.  A single state's carried first (then
   second) derivatives are one-pole scans; a group of coupled states (``opto``'s four) is one vector
   recursion per order, its matrix :math:`A[n]` built once for both orders and every right-hand side of
   an order (8 parameters, then 36 pairs for ``opto``) solved together by
   :func:`dynamatch.kernels.torch_scan.matrix_scan`.  The drive :math:`B` is the rest of the inlined
   update (carried sensitivities of earlier groups, already scanned, included).
3. **Sums.**  The prediction and its non-zero sensitivities go through the pre-filter (a scan) and are
   reduced over the counted samples, in the layout of the numba ``chunked_sums``.
"""

from __future__ import annotations

import re

import sympy as sp

from .forward import Derived, first_name, second_name
from .printing import PythonPrinter

INDENT = "    "


class TorchPrinter(PythonPrinter):
    """:class:`PythonPrinter` for tensors: branches as ``where``, logic as ``& | ~``."""

    def _choice(self, condition: str, value: str, otherwise: str) -> str:
        return f"where({condition}, {value}, {otherwise})"

    def _branch(self, value) -> str:
        """A branch value; a number as a 0-d tensor of the working dtype (``one``), so that ``where`` of two
        numbers is not promoted to torch's default float32."""
        return f"{self._print(value)}*one" if value.is_Number else self._print(value)

    def _print_And(self, expression) -> str:
        return "(" + " & ".join(f"({self._print(a)})" for a in expression.args) + ")"

    def _print_Or(self, expression) -> str:
        return "(" + " | ".join(f"({self._print(a)})" for a in expression.args) + ")"

    def _print_Not(self, expression) -> str:
        return f"(~({self._print(expression.args[0])}))"


_X, _X_N = sp.Symbol("x", real=True), sp.Symbol("x_n", real=True)
_LEVEL, _LEVEL_N = sp.Symbol("level_log", real=True), sp.Symbol("level_log_n", real=True)


def _inline(expression, definitions: dict, keep: set) -> sp.Expr:
    """``expression`` with every symbol in ``keep`` replaced by its definition, recursively."""
    expression = sp.sympify(expression)
    while True:
        present = expression.free_symbols & keep
        if not present:
            return expression
        expression = expression.xreplace({s: definitions[s] for s in present})


def _dependent(statements, unknowns: set) -> set:
    """Targets of ``statements`` (in order) that depend, directly or through earlier ones, on ``unknowns``."""
    tainted = set(unknowns)
    out = set()
    for st in statements:
        if st.expression.free_symbols & tainted:
            tainted.add(st.target)
            out.add(st.target)
    return out


def _relationals_with(expression, symbol, replacement):
    """``expression`` with ``symbol`` replaced by ``replacement`` inside branch conditions only."""
    return expression.replace(
        lambda e: isinstance(e, sp.core.relational.Relational) and symbol in e.free_symbols,
        lambda e: e.xreplace({symbol: replacement}),
    )


class CoupledRecursionError(ValueError):
    """A member whose carried sensitivities the generator cannot scan: not linear in the carried ones, or
    coupled states whose coefficient matrix differs between right-hand sides (no member of the family)."""


def _order(items: dict) -> list:
    """Keys of ``items`` (key -> keys it reads) in an order where each comes after what it reads."""
    done, out = set(), []
    pending = list(items)
    while pending:
        ready = [k for k in pending if items[k] <= done | {k}]
        if not ready:
            raise CoupledRecursionError(f"coupled recursions {pending}: not a cascade of one-poles")
        for k in ready:
            done.add(k)
            out.append(k)
            pending.remove(k)
    return out


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.printer = TorchPrinter()

    def line(self, text: str = "", depth: int = 0) -> None:
        self.lines.append(INDENT * depth + text if text else "")

    def assign(self, target: str, expression, depth: int) -> None:
        self.line(f"{target} = {self.printer.doprint(sp.sympify(expression))}", depth)


def _value_scans(derived: Derived, definitions: dict, keep: set):
    """Per state (in cascade order): (index, a, b, condition symbol or None), or None when some state is
    not affine in its own previous value (the value phase is then a sequential loop)."""
    program = derived.program
    if any(len(group) > 1 for group in _strongly_connected(_state_reads(program, definitions))):
        return None  # states that read each other in a cycle (opto's cell): a loop, before costly algebra
    reads, pieces = {}, {}
    prev = set(program.states)
    for k, (state, update) in enumerate(zip(program.states, program.next_states)):
        expression = _inline(update, definitions, keep)
        condition = sp.Symbol(state.name + "_branch", real=True)
        expression = _relationals_with(expression, state, condition)
        a = sp.diff(expression, state)
        if state in a.free_symbols or sp.diff(a, state) != 0:
            return None
        b = expression.xreplace({state: sp.Integer(0)})
        if state in b.free_symbols:
            return None
        others = (a.free_symbols | b.free_symbols) & prev
        reads[k] = {program.states.index(s) for s in others}
        pieces[k] = (a, b, condition if condition in (a.free_symbols | b.free_symbols) else None)
    try:
        order = _order(reads)
    except ValueError:
        return None
    return [(k, *pieces[k]) for k in order]


def _state_reads(program, definitions: dict) -> dict:
    """State index -> the states whose previous values its update reads, directly or through the value
    statements (structural, no algebra)."""
    reads = {}
    for k, update in enumerate(program.next_states):
        seen, stack = set(), list(sp.sympify(update).free_symbols)
        while stack:
            symbol = stack.pop()
            if symbol in seen:
                continue
            seen.add(symbol)
            if symbol in definitions:
                stack.extend(sp.sympify(definitions[symbol]).free_symbols)
        reads[k] = {j for j, state in enumerate(program.states) if state in seen}
    return reads


def _coupling(model: str, carried: dict, expressions: dict, states: int) -> dict:
    r"""(k, l) -> the coefficient of state l's carried sensitivity in state k's (non-zero ones only), one
    expression per pair for every right-hand side (index or pair); a sample's :math:`\partial s_k[n]/\partial
    s_l[n-1]`.  CoupledRecursionError when a sensitivity is not linear in the carried ones, or (for states
    that are coupled) the coefficient differs between right-hand sides."""
    found: dict = {}
    symbols = set(carried.values())
    for (k, index), expression in expressions.items():
        for l in range(states):
            symbol = carried.get((l, index))
            if symbol is None:
                continue
            a = sp.diff(expression, symbol)
            if a.free_symbols & symbols:
                raise CoupledRecursionError(f"{model}: sensitivity {carried[(k, index)]} is not linear in the "
                                            "carried sensitivities")
            if a != 0:
                found.setdefault((k, l), {})[index] = a
    coupling = {}
    for (k, l), per_index in found.items():
        distinct = set(per_index.values())
        if len(distinct) > 1 and k != l:
            raise CoupledRecursionError(f"{model}: the coefficient of state {l} in state {k}'s sensitivities "
                                        "differs between right-hand sides")
        coupling[(k, l)] = per_index[min(per_index)] if len(distinct) == 1 else per_index
    return coupling


def _strongly_connected(reads: dict) -> list[list]:
    """Strongly connected groups of ``reads`` (key -> keys it reads; Tarjan 1972), each sorted, in an
    order where every group comes after the groups it reads."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for u in sorted(reads[v]):
            if u not in index:
                visit(u)
                low[v] = min(low[v], low[u])
            elif u in on_stack:
                low[v] = min(low[v], index[u])
        if low[v] == index[v]:
            group = []
            while True:
                u = stack.pop()
                on_stack.discard(u)
                group.append(u)
                if u == v:
                    break
            groups.append(sorted(group))

    for v in sorted(reads):
        if v not in index:
            visit(v)
    return groups


def torch_source(derived: Derived) -> str:
    """The complete source of ``dynamatch/kernels/torch_generated/<model>.py``."""
    program = derived.program
    spec = program.spec
    n = len(program.parameters)
    rests = [float(v) for v in (*spec.states.values(), *spec.output_states.values())]
    constant = set(program.parameters)
    prologue, body = [], []
    for st in derived.statements:
        if st.expression.free_symbols <= constant:
            constant.add(st.target)
            prologue.append(st)
        else:
            body.append(st)
    values = [st for st in body if st.order == 0]
    value_definitions = {st.target: st.expression for st in values}
    value_dependent = _dependent(values, set(program.states))
    scans = _value_scans(derived, value_definitions, value_dependent)

    w = _Writer()
    w.line(f'"""Torch objective sums of the ``{spec.name}`` model: {spec.summary}.')
    w.line()
    w.line("GENERATED by ``python -m dynamatch.codegen`` from :mod:`dynamatch.models.family`; do not edit.")
    w.line("Same sums as :mod:`dynamatch.kernels.generated." + spec.module_name + "` (see :mod:`dynamatch.codegen.torch_module`);")
    w.line("the states are " + ("one-pole scans with branches found by fixed point." if scans is not None else
                               "computed by a sequential loop over the samples (batched over chunks)."))
    w.line('"""')
    w.line()
    if scans is None:
        w.line("import numpy")
    w.line("import torch")
    w.line("from torch import where  # noqa: F401 - used by some members")
    w.line("MATH_IMPORTS")
    w.line()
    w.line("from ..torch_family import coupling, matrix_scan, objective_sums, settle, shifted, state_scan  # noqa: F401")
    w.line()
    w.line(f"MODEL = {spec.name!r}")
    w.line(f"KERNEL_PARAMETERS = {tuple(p.name for p in program.parameters)!r}")
    w.line(f"REST_STATE = {tuple(rests)!r}")
    w.line(f"PAIRS = {derived.pairs!r}")
    w.line(f"SCANNED_STATES = {scans is not None!r}")
    w.line()
    w.line()

    # -- phase 1: the state sequences --------------------------------------------------------------
    w.line("def states(x, level_log, q, guess, block):")
    w.line('"""Sequences of every state (tuple, ``REST_STATE`` order) over the chunks ``x``, ``level_log``', 1)
    w.line("(chunks, samples); ``guess``: a previous evaluation's sequences (warm start of the branch", 1)
    w.line('search) or None.  Returns (sequences, scans or loop passes)."""', 1)
    names = [s.name for s in program.states]
    if scans is None:
        w.line('if x.device.type == "cpu":  # the loop\'s small operations cost ≈ 3× less in numpy than in torch', 1)
        w.line("q = q.numpy()", 2)
        w.line("sequences = _loop(x.numpy(), level_log.numpy(), q, numpy.ones((), dtype=q.dtype), numpy)", 2)
        w.line("return tuple(torch.from_numpy(s) for s in sequences), x.shape[1]", 2)
        w.line("return _loop(x, level_log, q, torch.ones((), dtype=q.dtype, device=q.device), torch), x.shape[1]", 1)
        w.line()
        w.line()
        w.line("def _loop(x, level_log, q, one, xp):")
        w.line('"""The state sequences by a loop over the samples, batched over the chunks, in ``xp`` (torch or', 1)
        w.line('numpy: the same statements run on either)."""', 1)
        w.line("where, exp, log, sqrt = xp.where, xp.exp, xp.log, xp.sqrt  # noqa: F841 - used by some members", 1)
    for i, p in enumerate(program.parameters):
        w.line(f"{p.name} = q[{i}]", 1)
    if scans is not None:
        w.line("one = torch.ones((), dtype=q.dtype, device=q.device)  # constant branches keep the working dtype", 1)
    for st in prologue:
        if st.order == 0:
            w.assign(st.target.name, st.expression, 1)
    if scans is not None:
        for st in values:
            if st.target not in value_dependent:
                w.assign(st.target.name, st.expression, 1)
        w.line("passes = 0", 1)
        w.line(f"sequences = [None] * {len(names)}", 1)
        for k, a, b, condition in scans:
            state = program.states[k]
            reads = sorted({s.name for s in (a.free_symbols | b.free_symbols)} & set(names) - {state.name})
            for other in reads:
                j = names.index(other)
                w.line(f"{other} = shifted(sequences[{j}], {rests[j]!r})", 1)
            if condition is None:
                w.line(f"sequences[{k}] = state_scan({w.printer.doprint(a)}, {w.printer.doprint(b)}, {rests[k]!r}, x, block)", 1)
                w.line("passes = max(passes, 1)", 1)
                continue
            w.line(f"def coefficients_{k}({condition.name}):", 1)
            w.line(f"return {w.printer.doprint(a)}, {w.printer.doprint(b)}", 2)
            w.line(f"sequences[{k}], used = settle(coefficients_{k}, None if guess is None else guess[{k}], "
                   f"{rests[k]!r}, x, block)", 1)
            w.line("passes = max(passes, used)", 1)
        w.line("return tuple(sequences), passes", 1)
    else:
        needed_symbols = set().union(*(sp.sympify(e).free_symbols for e in program.next_states))
        loop = [st for st in values if st.target in _closure(values, needed_symbols)]
        for k, s in enumerate(program.states):
            w.line(f"{s.name} = xp.full_like(x[:, 0], {rests[k]!r})", 1)
            w.line(f"sequence_{k} = xp.empty_like(x)", 1)
        w.line("for n in range(x.shape[1]):", 1)
        used = set().union(*(st.expression.free_symbols for st in loop), needed_symbols)
        if _X in used:
            w.line("x_n = x[:, n]", 2)
        if _LEVEL in used:
            w.line("level_log_n = level_log[:, n]", 2)
        for st in loop:
            w.assign(st.target.name, st.expression.xreplace({_X: _X_N, _LEVEL: _LEVEL_N}), 2)
        for k, (s, e) in enumerate(zip(program.states, program.next_states)):
            w.assign(f"next_{k}", sp.sympify(e).xreplace({_X: _X_N, _LEVEL: _LEVEL_N}), 2)
        for k, s in enumerate(program.states):
            w.line(f"sequence_{k}[:, n] = next_{k}", 2)
            w.line(f"{s.name} = next_{k}", 2)
        w.line(f"return ({', '.join(f'sequence_{k}' for k in range(len(names)))},)", 1)
    w.line()
    w.line()

    # -- phases 2 and 3: sensitivities and sums ----------------------------------------------------
    w.line("def sums(order, x, level_log, t, weight, q, makeup_gain, zero, pole, guess, block):")
    w.line('"""Objective sums of ``order`` (0, 1, 2) over the batch, float64, in the numba layout; ``weight``', 1)
    w.line('is 1 on counted samples, else 0.  Returns (sums, state sequences, passes)."""', 1)
    w.line("sequences, passes = states(x, level_log, q, guess, block)", 1)
    for i, p in enumerate(program.parameters):
        w.line(f"{p.name} = q[{i}]", 1)
    w.line("one = torch.ones((), dtype=q.dtype, device=q.device)", 1)
    for k, s in enumerate(program.states):
        w.line(f"{s.name} = shifted(sequences[{k}], {rests[k]!r})", 1)
    for st in prologue:
        if st.order == 0:
            w.assign(st.target.name, st.expression, 1)
    for st in values:
        w.assign(st.target.name, st.expression, 1)
    w.assign("u", program.output, 1)
    w.line("first, second = {}, {}", 1)
    coupled = {}  # group of states -> its coupling matrix, written in the first-order phase
    carried_first = {(k, i): sp.Symbol(first_name(s, i), real=True)
                     for k, s in enumerate(program.states) for i in sorted(derived.state_first[k])}
    carried_second = {(k, pair): sp.Symbol(second_name(s, pair), real=True)
                      for k, s in enumerate(program.states) for pair in derived.pairs if pair in derived.state_second[k]}
    for order, carried, nexts in ((1, carried_first, derived.next_first), (2, carried_second, derived.next_second)):
        w.line(f"if order >= {order}:", 1)
        for st in prologue:
            if st.order == order:
                w.assign(st.target.name, st.expression, 2)
        statements = [st for st in body if st.order == order]
        definitions = {st.target: st.expression for st in statements}
        dependent = _dependent(statements, set(carried.values()))
        for st in statements:
            if st.target not in dependent:
                w.assign(st.target.name, st.expression, 2)
        expressions = {key: _inline(nexts[key[0]].get(key[1], 0), definitions, dependent) for key in carried}
        coupling = _coupling(spec.name, carried, expressions, len(program.states))
        for group in _strongly_connected({k: {l for (j, l) in coupling if j == k} for k in range(len(program.states))}):
            keys = [key for key in carried if key[0] in group]
            zeroed = {carried[key]: sp.Integer(0) for key in keys}
            drives = {key: expressions[key].xreplace(zeroed) for key in keys}
            if len(group) == 1:
                k = group[0]
                own = coupling.get((k, k), sp.Integer(0))
                for key in keys:
                    a = own.get(key[1], sp.Integer(0)) if isinstance(own, dict) else own
                    w.line(f"{carried[key].name} = shifted(state_scan({w.printer.doprint(a)}, "
                           f"{w.printer.doprint(drives[key])}, 0.0, x, block), 0.0)", 2)
                continue
            name = "_".join(str(k) for k in group)
            entries = tuple(tuple(coupling.get((k, l), sp.Integer(0)) for l in group) for k in group)
            if order == 1 or coupled.get(tuple(group)) != entries:
                coupled[tuple(group)] = entries
                rows = ", ".join("(" + ", ".join(w.printer.doprint(e) for e in row) + ",)" for row in entries)
                w.line(f"coupling_{name} = coupling(({rows},), x)", 2)
                w.line(f"products_{name} = []", 2)
            indices = sorted({index for k, index in keys})
            w.line(f"drive = torch.zeros((*x.shape, {len(group)}, {len(indices)}), dtype=x.dtype, device=x.device)", 2)
            for key in keys:
                if drives[key] != 0:
                    w.line(f"drive[..., {group.index(key[0])}, {indices.index(key[1])}] = "
                           f"{w.printer.doprint(drives[key])}", 2)
            w.line(f"scanned = matrix_scan(coupling_{name}, drive, block, products_{name})", 2)
            w.line("del drive", 2)
            for key in keys:
                w.line(f"{carried[key].name} = shifted(scanned[..., {group.index(key[0])}, {indices.index(key[1])}], 0.0)", 2)
            w.line("del scanned", 2)
        for st in statements:
            if st.target in dependent:
                w.assign(st.target.name, st.expression, 2)
        outputs = derived.output_first if order == 1 else derived.output_second
        for key in (range(n) if order == 1 else derived.pairs):
            if key in outputs:
                target = "first" if order == 1 else "second"
                w.line(f"{target}[{key!r}] = {w.printer.doprint(sp.sympify(outputs[key]))}", 2)
    w.line(f"return objective_sums(order, {n}, PAIRS, u, first, second, x, t, weight, makeup_gain, zero, pole, block), "
           "sequences, passes", 1)
    text = "\n".join(w.lines) + "\n"
    used = [f for f in ("exp", "log", "sqrt") if re.search(rf"\b{f}\(", text)]
    return text.replace("MATH_IMPORTS", f"from torch import {', '.join(used)}  # noqa: F401" if used else "")


def _closure(statements, symbols: set) -> set:
    """Targets among ``statements`` that ``symbols`` need, directly or indirectly."""
    definitions = {st.target: st.expression for st in statements}
    needed, frontier = set(), set(symbols)
    while frontier:
        s = frontier.pop()
        if s in definitions and s not in needed:
            needed.add(s)
            frontier |= definitions[s].free_symbols
    return needed
