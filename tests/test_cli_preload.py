"""`dynamatch fit` loads the long-capture kernels in a thread while it reads long files."""

from __future__ import annotations

import numpy as np

from dynamatch import cli
from dynamatch.kernels import signal_checks


def test_preload_starts_only_for_long_files_and_loads_the_float32_kernels(tmp_path, monkeypatch):
    import dynamatch.data.audio as audio

    small = tmp_path / "small.wav"
    small.write_bytes(b"\0" * 1000)
    assert cli._preload_kernels_during_read(small, small) is None
    assert cli._preload_kernels_during_read(tmp_path / "missing.wav", small) is None
    monkeypatch.setattr(audio, "PARALLEL_READ_BYTES", 100)
    thread = cli._preload_kernels_during_read(small, small)
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive()
    float32 = {str(signature[0].dtype) for signature in signal_checks._statistics_parallel.signatures}
    assert "float32" in float32
    assert any(str(signature[0].dtype) == "float32" for signature in signal_checks._fir_same_in_place.signatures)
    x = np.linspace(-1, 1, 1000).astype(np.float32)  # and they still compute
    assert signal_checks.dot(x) == signal_checks.dot(x.astype(np.float64))
