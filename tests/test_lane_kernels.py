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
from dynamatch.kernels.chunks import chunk_bounds, chunk_count, lane_groups
from dynamatch.models.family import model_spec
from dynamatch.optimize.objective import CompressorObjective
from test_family import POINT, SAMPLE_RATE, check_derivatives, member, programme, target

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


#: chunks of 0.05 s with 0.01 s of warm-up: 0.5 s gives 12 full chunks and a short one (3 groups and one
#: chunk alone), 0.15 s 3 chunks (one group with an idle lane), 0.07 s 2 chunks (no group)
@pytest.mark.parametrize("model", ["ff5", "opto", "ff5-emphasis-hp"])
@pytest.mark.parametrize("seconds", [0.5, 0.15, 0.07])
def test_lane_sums_are_the_one_chunk_sums(model, seconds):
    dry = programme(seconds, seed=3)
    objective = CompressorObjective(dry, target(model, dry), SAMPLE_RATE, model=model, chunk_seconds=0.05,
                                    warmup_seconds=0.01)
    q = objective.kernel_params(member(model, **POINT))
    for order in range(3):
        expected = one_chunk_at_a_time(objective, order, q)
        np.testing.assert_allclose(objective._sums(order, q), expected, rtol=1e-13, atol=1e-15 * np.abs(expected).max())


def test_lane_kernels_exist_for_the_passes_the_rule_picks():
    for model, lane_orders in (("ff5", (2,)), ("opto", (1, 2))):
        derived = differentiate(trace(model_spec(model)))
        kernels = CompressorObjective(programme(0.1), programme(0.1, seed=1), SAMPLE_RATE, model=model)._kernels
        for order, name in enumerate(("_loss_lanes", "_gradient_lanes", "_hessian_lanes")):
            assert hasattr(kernels, name) == uses_lanes(derived, order) == (order in lane_orders), (model, order)


def test_lane_groups_cover_the_chunks_with_at_most_one_idle_lane():
    for chunks in range(1, 40):
        groups = lane_groups(chunks, LANES)
        idle, singles = max(LANES * groups - chunks, 0), max(chunks - LANES * groups, 0)
        assert idle <= 1 and singles <= LANES - 2 and LANES * groups - idle + singles == chunks, chunks


@pytest.mark.parametrize("model", ["ff5", "opto"])
def test_lane_derivatives_match_central_differences(model):
    dry = programme(0.5, seed=4)
    objective = CompressorObjective(dry, target(model, dry), SAMPLE_RATE, model=model, chunk_seconds=0.05,
                                    warmup_seconds=0.01)
    assert lane_groups(chunk_count(dry.size, objective.chunk_samples, objective.warmup_samples), LANES) == 3
    check_derivatives(objective, objective.kernel_params(member(model, **POINT)))
