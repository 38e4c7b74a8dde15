"""Generate every family member's kernels from its one description (needs sympy: ``pip install -e '.[dev]'``).

``python -m dynamatch.codegen`` rewrites ``dynamatch/kernels/generated/*.py`` and the plugin's C++
steps; ``--check`` only reports whether they are up to date (the tests run it).
"""

from .forward import differentiate
from .numba_module import module_source
from .trace import trace

__all__ = ["differentiate", "module_source", "trace"]
