"""The lock-step lane kernels give the sums of the one-chunk kernels they replace, to round-off.

The arithmetic is the same, in the same order per chunk; only LLVM's choice of fused multiply-adds
differs between the SIMD loop and the scalar one (measured: at most 7e-16 relative), while a sample
counted wrongly would move a sum by ~1e-4 of itself.

Reference: the generated one-chunk kernels (``_loss_chunk`` ...), run one chunk at a time in Python and
added in chunk order — the path every member took before lanes, and the one the finite-difference and
per-sample tests of test_family.py check on signals too short for a lane group.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynamatch.codegen.numba_module import LANES, uses_lanes
from dynamatch.codegen.forward import differentiate
from dynamatch.codegen.trace import trace
from dynamatch.kernels.chunks import chunk_bounds, chunk_count, full_chunk_count
from dynamatch.models.family import model_spec
from dynamatch.optimize.objective import CompressorObjective
from test_family import POINT, SAMPLE_RATE, member, programme, target

CHUNK_CALLS = ("_loss_chunk", "_gradient_chunk", "_hessian_chunk")


def one_chunk_at_a_time(objective: CompressorObjective, order: int, q: np.ndarray) -> np.ndarray:
    kernels = objective._kernels
    dry, wet = objective._dry, objective._wet
    total, chunk, warmup = dry.size, objective.chunk_samples, objective.warmup_samples
    width = (kernels.LOSS_SUMS, kernels.GRADIENT_SUMS, kernels.HESSIAN_SUMS)[order]
    sums = np.zeros(width)
    for k in range(chunk_count(total, chunk, warmup)):
        start, stop, count_from = chunk_bounds(k, total, chunk, warmup)
        out = np.zeros(width)
        getattr(kernels, CHUNK_CALLS[order])(dry, wet, objective._target_states[k], start, stop, count_from,
                                             np.ascontiguousarray(q[:-1]), np.exp(np.log(10) / 20 * q[-1]),
                                             objective._zero, objective._pole, out)
        sums += out
    return sums


@pytest.mark.parametrize("model", ["ff5", "opto", "ff5-emphasis-hp"])
@pytest.mark.parametrize("seconds", [0.5, 0.23])  # 11 full chunks and a short one; 4 full chunks (no group)
def test_lane_sums_are_the_one_chunk_sums(model, seconds):
    dry = programme(seconds, seed=3)
    objective = CompressorObjective(dry, target(model, dry), SAMPLE_RATE, model=model, chunk_seconds=0.05,
                                    warmup_seconds=0.01)
    q = objective.kernel_params(member(model, **POINT))
    lanes_ran = False
    for order in range(3):
        expected = one_chunk_at_a_time(objective, order, q)
        np.testing.assert_allclose(objective._sums(order, q), expected, rtol=1e-13, atol=1e-15 * np.abs(expected).max())
        lanes_ran |= hasattr(objective._kernels, ("_loss_lanes", "_gradient_lanes", "_hessian_lanes")[order])
    full = full_chunk_count(dry.size, objective.chunk_samples, objective.warmup_samples)
    assert lanes_ran and (full >= LANES) == (seconds == 0.5)


def test_lane_kernels_exist_for_the_orders_the_rule_picks():
    for model in ("ff5", "opto"):
        spec = model_spec(model)
        derived = differentiate(trace(spec))
        kernels = CompressorObjective(programme(0.1), programme(0.1, seed=1), SAMPLE_RATE, model=model,
                                      chunk_seconds=0.05, warmup_seconds=0.01)._kernels
        for order, name in enumerate(("_loss_lanes", "_gradient_lanes", "_hessian_lanes")):
            assert hasattr(kernels, name) == uses_lanes(derived, order), (model, order)
    assert uses_lanes(differentiate(trace(model_spec("ff5"))), 2)  # the Hessian pass of every member


def test_full_chunk_count_counts_the_chunks_of_full_length():
    for total, chunk, warmup in [(100, 30, 10), (30, 30, 10), (29, 30, 10), (1000, 7, 3), (50, 10, 0)]:
        bounds = [chunk_bounds(k, total, chunk, warmup) for k in range(chunk_count(total, chunk, warmup))]
        assert full_chunk_count(total, chunk, warmup) == sum(stop - start == chunk for start, stop, _ in bounds)
