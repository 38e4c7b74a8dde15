"""Branch-free scalar choices for the generated kernels.

A ternary in numba source becomes three basic blocks of numba's IR, and numba's SSA and liveness passes
cost about (blocks × variables): the Hessian kernel of ``opto`` held ~1000 blocks (a ternary per
branch-selected sensitivity, an ``if`` per flushed value) and took 71 s to compile (19.5 s with these calls).  Written as calls
to these functions the choices stay inside one block; LLVM inlines them back into ``select`` instructions,
so the machine code (and every result) is the one the ternaries gave.  Both operands of :func:`select` are
evaluated, which the generated code allows: its branches are arithmetic on values already computed, and a
division by zero in the branch not taken gives an IEEE value (``error_model="numpy"``), never an error.
"""

from __future__ import annotations

from ._numba import kernel

#: Carried values smaller than this in magnitude are set to zero by :func:`flushed` (see the codegen's
#: ``FLUSH_PERIOD``): decaying recursions otherwise sink into subnormal numbers, ~100 cycles per operation.
FLUSH_BELOW = 1e-100


@kernel
def select(condition, if_true, if_false):
    """``if_true`` where ``condition`` holds, else ``if_false``."""
    return if_true if condition else if_false


@kernel
def flushed(value):
    """``value``, or 0 when ``|value| < FLUSH_BELOW``."""
    return 0.0 if abs(value) < FLUSH_BELOW else value
