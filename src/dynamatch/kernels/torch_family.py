r"""Runtime pieces of the generated torch objectives (:mod:`dynamatch.kernels.torch_generated`).

Every recursion is a one-pole :math:`y[n] = a[n]\,y[n-1] + b[n]` from a rest value, evaluated by the
parallel scan of :mod:`dynamatch.kernels.torch_scan`, or, for a group of states that read each other's
previous values (``opto``), a vector recursion with one matrix :func:`coupling` for all its carried
sensitivities, evaluated by :func:`~dynamatch.kernels.torch_scan.matrix_scan`; :func:`settle` finds branch
conditions that depend on the scanned state by fixed point; :func:`objective_sums` pre-filters the prediction and its
sensitivities and reduces them in the layout of the numba kernels' ``chunked_sums``.

Import this module only where torch is wanted: it imports torch at the top.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch

from .torch_scan import linear_scan, matrix_scan, prefilter_scan  # noqa: F401 - matrix_scan: for the generated modules


#: Members with a generated torch objective (the files written by ``python -m dynamatch.codegen``).
TORCH_MEMBERS = frozenset(p.stem.replace("_", "-") for p in (Path(__file__).parent / "torch_generated").glob("*.py")
                          if p.stem != "__init__")


def torch_kernels_of(module_name: str) -> ModuleType:
    """The generated torch module of a family member (``module_name``: its name with ``-`` as ``_``);
    ParameterError (one line) for a name the generator wrote none for."""
    try:
        return importlib.import_module(f"{__package__}.torch_generated.{module_name}")
    except ModuleNotFoundError:
        from ..errors import ParameterError

        raise ParameterError(f"model {module_name.replace('_', '-')!r} has no generated torch objective (run "
                             f"python -m dynamatch.codegen); use the numba backend (no --device) or one of "
                             f"{', '.join(sorted(TORCH_MEMBERS))}") from None


def shifted(sequence: torch.Tensor, rest: float) -> torch.Tensor:
    """``sequence`` delayed by one sample along the last axis, ``rest`` first (the previous values)."""
    return torch.nn.functional.pad(sequence[..., :-1], (1, 0), value=rest)


def state_scan(a, b, rest: float, like: torch.Tensor, block: int) -> torch.Tensor:
    """:math:`y[n] = a[n] y[n-1] + b[n]` from :math:`y[-1] = ` ``rest``; ``a``, ``b`` broadcast to ``like``."""
    a = torch.broadcast_to(torch.as_tensor(a, dtype=like.dtype, device=like.device), like.shape)
    b = torch.broadcast_to(torch.as_tensor(b, dtype=like.dtype, device=like.device), like.shape)
    if rest:
        b = b.clone()
        b[..., 0] += a[..., 0] * rest
    return linear_scan(a, b, block)


def coupling(rows, like: torch.Tensor) -> torch.Tensor:
    r"""The per-sample matrix :math:`A[n]` of a group of coupled states, (..., samples, m, m), from its ``rows``
    of entries (tensors or numbers broadcasting to ``like``): :math:`A_{kl}[n] = \partial s_k[n]/\partial s_l[n-1]`,
    the coefficient of every carried sensitivity recursion of the group (:func:`matrix_scan`)."""
    return torch.stack([torch.stack([torch.broadcast_to(torch.as_tensor(e, dtype=like.dtype, device=like.device),
                                                        like.shape) for e in row], -1) for row in rows], -2)


def settle(coefficients: Callable, guess: torch.Tensor | None, rest: float, like: torch.Tensor,
           block: int) -> tuple[torch.Tensor, int]:
    """A branching one-pole by fixed point: ``coefficients(previous) -> (a, b)`` with the branches chosen
    from ``previous`` (the state one sample earlier); start from ``guess`` (or the rest value), scan,
    re-evaluate the branches from the scanned state, repeat until (a, b) no longer change.  If the
    branches before sample k are right, so is k's after the next pass: at most one pass per sample, and
    the fixed point is the sequential recursion.  Returns (sequence, scans)."""
    if guess is None or guess.shape != like.shape:
        previous = torch.full_like(like, rest)
    else:
        previous = shifted(guess, rest)

    def evaluate(previous):
        a, b = coefficients(previous)
        return torch.broadcast_to(a, like.shape), torch.broadcast_to(b, like.shape)

    a, b = evaluate(previous)
    limit = like.shape[-1] + 1
    for passes in range(1, limit + 1):
        sequence = state_scan(a, b, rest, like, block)
        a_next, b_next = evaluate(shifted(sequence, rest))
        if torch.equal(a_next, a) and torch.equal(b_next, b):
            return sequence, passes
        a, b = a_next, b_next
    raise FloatingPointError(f"the branches did not settle in {limit} passes")


def objective_sums(order: int, parameters: int, pairs, u, first: dict, second: dict, like: torch.Tensor,
                   t: torch.Tensor, weight: torch.Tensor, makeup_gain: float, zero: float, pole: float,
                   block: int) -> torch.Tensor:
    """Sums of the pre-filtered prediction ``u`` (and its sensitivities ``first[i]``, ``second[(i, j)]``;
    absent = structurally zero) against the pre-filtered target ``t`` over the ``weight``-ed samples of
    all chunks, float64, in the order of the numba ``chunked_sums``."""

    def z_of(signal):
        signal = torch.broadcast_to(torch.as_tensor(signal, dtype=like.dtype, device=like.device), like.shape)
        return prefilter_scan(signal, zero, pole, block)

    def total(values):
        return values.to(torch.float64).sum()

    z = z_of(u)
    r = makeup_gain * z - t
    rw, zw = r * weight, z * weight
    out = [total(rw * r), total(zw * z), total(zw * t), total(rw * z)]
    if order >= 1:
        zero_sum = torch.zeros((), dtype=torch.float64, device=like.device)
        z_first = {i: z_of(s) for i, s in first.items()}
        out += [total(rw * z_first[i]) if i in z_first else zero_sum for i in range(parameters)]
        out += [total(zw * z_first[i]) if i in z_first else zero_sum for i in range(parameters)]
        if order >= 2:
            out += [total(z_first[i] * weight * z_first[j]) if i in z_first and j in z_first else zero_sum
                    for i, j in pairs]
            out += [total(rw * z_of(second[pair])) if pair in second else zero_sum for pair in pairs]
    return torch.stack(out)
