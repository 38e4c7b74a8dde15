"""The compiled frame energies: the parallel driver gives the serial driver's numbers, bit for bit, and both
match a numpy reference."""

import numba
import numpy as np
import pytest

from dynamatch.kernels import signal_checks as sc


def _serial_before(x, offset, frame, count):
    """The serial kernel as it was before the parallel driver (one loop, the sum inline)."""
    out = np.zeros(count)
    for k in range(count):
        start = offset + k * frame
        acc = 0.0
        for n in range(start, start + frame):
            v = np.float64(x[n])
            acc += v * v
        out[k] = acc
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("frame,offset", [(441, 0), (441, 3), (220500, 0), (7, 5)])
def test_parallel_frame_energies_equal_the_serial_ones(dtype, frame, offset):
    from dynamatch.kernels._numba import FASTMATH

    rng = np.random.default_rng(frame + offset)
    x = (rng.standard_normal(3_000_017) * 0.3).astype(dtype)
    count = (x.size - offset) // frame
    serial = sc._frame_energies_serial(x, offset, frame, count)
    parallel = sc._frame_energies_parallel(x, offset, frame, count)
    np.testing.assert_array_equal(parallel, serial)
    before = numba.njit(fastmath=FASTMATH, error_model="numpy")(_serial_before)(x, offset, frame, count)
    np.testing.assert_array_equal(serial, before)
    blocks = x[offset: offset + count * frame].astype(np.float64).reshape(count, frame)
    np.testing.assert_allclose(serial, np.einsum("ij,ij->i", blocks, blocks), rtol=1e-12)


def test_frame_energies_picks_the_parallel_driver_on_long_signals(monkeypatch):
    x = np.linspace(-1.0, 1.0, 4096).astype(np.float32)
    called = []
    parallel = sc._frame_energies_parallel
    monkeypatch.setattr(sc, "_frame_energies_parallel", lambda *a: called.append(a[1:]) or parallel(*a))
    monkeypatch.setattr(sc, "PARALLEL_MIN_SAMPLES", 1024)
    np.testing.assert_array_equal(sc.frame_energies(x, 0, 64, 64), sc._frame_energies_serial(x, 0, 64, 64))
    sc.frame_energies(x, 0, 8, 8)  # 64 samples: below the threshold, serial
    assert called == [(0, 64, 64)]
