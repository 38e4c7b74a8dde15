"""Hosting a fast-math plugin leaves the floating-point environment as it was.

ZamComp (Debian's zam-plugins, built with -ffast-math) turns on flush-to-zero when its library loads;
loaded by pedalboard directly, the process then reads denormals as zero.  Through dynamatch's host the
environment is restored.  Each plugin case runs in a fresh interpreter: a library's constructor runs
only at its first load in a process.
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynamatch.data.floating_point import flushes_denormals, preserved_floating_point_environment
from skips import require_module, require_tool

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")
LOAD_DIRECTLY = f"import pedalboard; pedalboard.load_plugin({str(ZAMCOMP)!r})"
LOAD_HOSTED = ("import numpy as np; from dynamatch.data.plugins import open_plugin; "
               f"p = open_plugin({str(ZAMCOMP)!r}); "
               "p.render(np.random.default_rng(0).standard_normal(4096) * 0.3, 44100, {'threshold_db': -20})")
PRINT_FLUSH = "; from dynamatch.data.floating_point import flushes_denormals; print(flushes_denormals())"


def flushes_after(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", code + PRINT_FLUSH], capture_output=True, text=True, check=True)
    return {"True": True, "False": False}[out.stdout.strip().splitlines()[-1]]


def test_a_fresh_interpreter_keeps_denormals():
    assert flushes_after("pass") is False
    assert flushes_denormals() is False  # the session's own thread, under conftest's guard


def test_hosted_plugin_restores_what_loading_it_changes():
    require_module("pedalboard", "pip install pedalboard")
    require_tool(ZAMCOMP, "apt install zam-plugins")
    if not flushes_after(LOAD_DIRECTLY):
        pytest.skip("tool: this ZamComp build does not touch the floating-point environment (nothing to restore)")
    assert flushes_after(LOAD_HOSTED) is False


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux", reason="tool: glibc x86-64 fenv_t layout")
def test_the_environment_is_restored_after_the_block():
    """Set FTZ|DAZ inside the block through glibc's fenv_t (MXCSR is its eighth 32-bit word)."""
    libm = ctypes.CDLL("libm.so.6")
    env = (ctypes.c_uint32 * 8)()
    with preserved_floating_point_environment():
        libm.fegetenv(env)
        env[7] |= 0x8040
        libm.fesetenv(env)
        assert flushes_denormals()
        assert np.spacing(np.finfo(float).tiny) == 0.0 or (np.array([5e-324]) * 1.0)[0] == 0.0
    assert not flushes_denormals()
    assert np.spacing(np.finfo(float).tiny) == 5e-324
