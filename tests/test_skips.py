"""The shared skip helper: categorised messages (counted in the run's summary); the project's own modules
never skip."""

from pathlib import Path

import pytest
from skips import require_module, require_shared, require_tool

pytest_plugins = ["pytester"]


def test_project_modules_are_never_skipped():
    with pytest.raises(ValueError, match="part of the project"):
        require_module("dynamatch.optimize.objective")


@pytest.mark.parametrize("call, category", [
    (lambda: require_shared(Path("/nonexistent/la2a"), "real LA-2A clips"), "shared data:"),
    (lambda: require_module("no_such_package_here", "pip install it"), "optional package:"),
    (lambda: require_tool("/nonexistent/Plugin.vst3", "apt install it"), "tool:"),
])
def test_skips_say_what_is_missing(call, category):
    with pytest.raises(pytest.skip.Exception, match=f"^{category}"):
        call()


def test_the_run_prints_skips_by_category(pytester):
    here = Path(__file__).resolve().parent
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(here)!r})\nfrom skips import summarise_skips\n\n"
                          "def pytest_terminal_summary(terminalreporter):\n    summarise_skips(terminalreporter)\n")
    pytester.makepyfile(test_x="""
from pathlib import Path
from skips import require_shared, require_tool

def test_a():
    require_shared(Path('/nonexistent'))

def test_b():
    require_shared(Path('/nonexistent2'))

def test_c():
    require_tool('/nonexistent/x', 'apt install x')
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*3 skipped*", "*2  shared data", "*1  tool"])
