"""float32 audio in the objective: kept as float32 (no float64 copy, no stored level or pre-filtered target),
every per-sample value and sum computed in float64, so the loss, gradient and Hessian are those of the
float64 objective on the same (exactly float32-representable) samples: to 1e-13 relative (the two dtypes are
two compiled specialisations, and LLVM may contract a different product into a fused multiply-add in
each: CI saw 2e-15 on one Hessian element), where float32 arithmetic would differ by ~1e-7."""

from __future__ import annotations

import numpy as np
import pytest

from dynamatch.data.stimulus import capture_stimulus
from dynamatch.kernels.prefilter import prefilter
from dynamatch.models.compressor import Compressor
from dynamatch.optimize.objective import CompressorObjective

SAMPLE_RATE = 44_100


@pytest.mark.parametrize("model", ["ff5", "ff5-slow-hp"])
def test_float32_objective_is_the_float64_objective(model):
    x = capture_stimulus(SAMPLE_RATE, duration_seconds=30.0, seed=0).astype(np.float32)
    y = Compressor(-30, 4, 5, 150, 3).process(x.astype(np.float64), SAMPLE_RATE).astype(np.float32)
    wide = CompressorObjective(x.astype(np.float64), y.astype(np.float64), SAMPLE_RATE, model=model)
    narrow = CompressorObjective(x, y, SAMPLE_RATE, model=model)
    assert narrow._dry.dtype == narrow._wet.dtype == np.float32
    assert np.shares_memory(narrow._dry, x) and np.shares_memory(narrow._wet, y)  # no copies
    start = Compressor(-25, 3, 3, 100, 1).as_model(model)
    q = wide.kernel_params(start)
    for got, expected in zip(narrow.loss_grad_hess(q), wide.loss_grad_hess(q)):
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * np.max(np.abs(expected)))
    # the energy of the target, pre-filtered over the whole signal as the kernels do it as they read it
    reference = float(np.sum(prefilter(y.astype(np.float64)) ** 2))
    assert narrow.target_energy == wide.target_energy == pytest.approx(reference, rel=1e-12)
