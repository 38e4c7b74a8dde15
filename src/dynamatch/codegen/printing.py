"""Code printers for the generated kernels: full double precision, small powers as products."""

from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.pycode import PythonCodePrinter


def _power(printer, expression: sp.Pow, inverse: str) -> str | None:
    base, exponent = expression.as_base_exp()
    b = printer.parenthesize(base, 100)  # always parenthesise compound bases
    if exponent == 2:
        return f"{b}*{b}"
    if exponent == 3:
        return f"{b}*{b}*{b}"
    if exponent == -1:
        return f"{inverse}/{b}"
    if exponent == -2:
        return f"{inverse}/({b}*{b})"
    if exponent == -3:
        return f"{inverse}/({b}*{b}*{b})"
    return None


class PythonPrinter(PythonCodePrinter):
    """Python source: ``exp``/``log`` from ``math``, floats as ``repr`` (17 digits), branches as ternaries."""

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": False, "standard": "python3"})

    def _print_Float(self, expression) -> str:
        return repr(float(expression))

    def _print_Rational(self, expression) -> str:
        return repr(float(expression))

    def _print_Integer(self, expression) -> str:
        return f"{int(expression)}.0"

    def _print_Pow(self, expression, rational=False) -> str:
        text = _power(self, expression, "1.0")
        if text is not None:
            return f"({text})"
        return super()._print_Pow(expression, rational)

    def _print_Piecewise(self, expression) -> str:
        *branches, (last, condition) = expression.args
        text = self._branch(last)
        for value, cond in reversed(branches):
            text = self._choice(self._print(cond), self._branch(value), text)
        return text

    def _branch(self, value) -> str:
        return self._print(value)

    def _choice(self, condition: str, value: str, otherwise: str) -> str:
        return f"({value} if {condition} else {otherwise})"


class NumbaPrinter(PythonPrinter):
    """:class:`PythonPrinter` with branches as calls of :func:`dynamatch.kernels.scalar.select` (one basic
    block of numba's IR each instead of three: see that module)."""

    def _choice(self, condition: str, value: str, otherwise: str) -> str:
        return f"select({condition}, {value}, {otherwise})"


class CppPrinter(C99CodePrinter):
    """C++ expressions: ``std::exp``, doubles printed exactly, ternaries for branches."""

    def _print_Float(self, expression) -> str:
        return repr(float(expression))

    def _print_Rational(self, expression) -> str:
        return repr(float(expression))

    def _print_Integer(self, expression) -> str:
        return f"{int(expression)}.0"

    def _print_Pow(self, expression) -> str:
        text = _power(self, expression, "1.0")
        if text is not None:
            return f"({text})"
        if expression.exp == sp.Rational(1, 2):
            return f"std::sqrt({self._print(expression.base)})"
        return f"std::pow({self._print(expression.base)}, {self._print(expression.exp)})"

    def _print_Function(self, expression) -> str:
        name = type(expression).__name__
        if name in ("exp", "log", "sqrt"):
            return f"std::{name}({self._print(expression.args[0])})"
        return super()._print_Function(expression)

    _print_exp = _print_Function
    _print_log = _print_Function

    def _print_Piecewise(self, expression) -> str:
        *branches, (last, condition) = expression.args
        text = self._print(last)
        for value, cond in reversed(branches):
            text = f"({self._print(cond)} ? {self._print(value)} : {text})"
        return text
