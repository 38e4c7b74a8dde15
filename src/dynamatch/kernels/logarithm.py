r"""A natural logarithm the compiler can vectorise: the objective kernels take the detector level
``ln max(|x|, ε)`` of a whole chunk in one pass (2.5 ns/sample here against 10.7 for the libm call),
so no full-length level array is stored.

fdlibm's ``__ieee754_log`` (as in musl) without its special cases, for positive normal ``v``: with
``v = 2^k·m``, ``√2/2 ≤ m < √2``, ``f = m − 1``, ``s = f/(2 + f)``,

.. math::

    \ln v = k\ln 2 + f - \tfrac12 f^2 + s\,(\tfrac12 f^2 + R(s^2))

where ``R`` is fdlibm's degree-14 minimax polynomial; measured within 2 ulp of numpy's ``log`` (4·10⁻¹⁶
relative; ``tests/test_kernels_logarithm.py``).  Compiled without fastmath (the hi/lo split of ``ln 2`` must not be reassociated), inlined into the kernels by LLVM.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01


@intrinsic
def _bits_of(typingctx, value):
    """The IEEE-754 bits of a float64 as an int64 (a bit cast, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float_of(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_positive(v):  # pragma: no cover - compiled
    """``ln v`` for a positive, normal, finite float64 ``v`` (within 2 ulp; no checks)."""
    bits = _bits_of(v)
    high = (bits >> 32) + (0x3FF00000 - 0x3FE6A09E)  # shifts m from [√2/2, √2) to [1, 2) for the exponent
    k = (high >> 20) - 0x3FF
    high = (high & 0x000FFFFF) + 0x3FE6A09E
    m = _float_of((high << 32) | (bits & 0xFFFFFFFF))
    f = m - 1.0
    half_square = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7))) + w * (LG2 + w * (LG4 + w * LG6))
    dk = float(k)
    return s * (half_square + r) + dk * LN2_LO - half_square + f + dk * LN2_HI
