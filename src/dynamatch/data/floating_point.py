"""The floating-point environment around third-party plugin code.

A plugin built with ``-ffast-math`` (DPF's default: Debian's zam-plugins are) carries a library
constructor that turns on flush-to-zero / denormals-are-zero (``MXCSR |= 0x8040`` on x86) the moment
the library is loaded, and some plugins set it while they process.  Neither is undone.  Hosted
in-process, such a plugin changes every later numpy and numba computation on that thread: a denormal
reads as 0, so ``np.spacing(tiny)`` is 0 and sums of tiny float32 products stop matching float64.

:func:`preserved_floating_point_environment` saves the C floating-point environment (``fegetenv``)
and restores it (``fesetenv``) when the block ends; :func:`keeps_floating_point_environment` does the
same around a function.  :func:`flushes_denormals` tells whether the calling thread flushes now.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import numpy as np

FENV_BYTES = 512  # larger than fenv_t on every platform (x86-64 glibc: 32 bytes; aarch64: 8)

Function = TypeVar("Function", bound=Callable)


@functools.cache
def _libm():
    """The C maths library's ``fegetenv``/``fesetenv``, or None where they cannot be found."""
    for name in (ctypes.util.find_library("m"), None):
        try:
            library = ctypes.CDLL(name)
            get, put = library.fegetenv, library.fesetenv
        except (OSError, AttributeError):
            continue
        get.argtypes = put.argtypes = [ctypes.c_void_p]
        get.restype = put.restype = ctypes.c_int
        return get, put
    return None


def flushes_denormals() -> bool:
    """Whether this thread's arithmetic flushes denormals to zero (inputs or results)."""
    denormal_input = (np.array([5e-324]) * np.array([1.0]))[0] == 0.0
    denormal_result = (np.array([3e-308]) * np.array([1e-10]))[0] == 0.0
    return bool(denormal_input or denormal_result)


@contextmanager
def preserved_floating_point_environment() -> Iterator[None]:
    """Run the block, then put the floating-point environment (rounding, flush modes) back as it was."""
    functions = _libm()
    if functions is None:  # pragma: no cover - every libc this project runs on has fenv.h
        yield
        return
    get, put = functions
    saved = ctypes.create_string_buffer(FENV_BYTES)
    get(saved)
    try:
        yield
    finally:
        put(saved)


def keeps_floating_point_environment(function: Function) -> Function:
    """Decorator: ``function`` runs inside :func:`preserved_floating_point_environment`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with preserved_floating_point_environment():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
