"""Every option of every command is parsed and reaches its handler, and the handler uses it.

1. The walk: each option of each (sub)command is given a non-default value; the command's handler is replaced
   by a recorder, which must receive exactly that value (an option that click accepts but drops, or that
   lands in another parameter, fails here).
2. The use: every parameter of every handler is read in the handler's body (an option that is accepted and
   ignored fails here); the options that go on to a library call are checked there by their own tests
   (tests/test_evaluate_protocols.py: --session, --metrics; tests/test_model_sources.py: --preset, --model).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dynamatch.cli import main


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


COMMANDS = dict(commands())
SKIPPED_OPTIONS = {"help", "version"}


def sample_path(param: click.Parameter, tmp_path: Path, index: int = 0) -> Path:
    kind: click.Path = param.type
    path = tmp_path / f"{param.name}{index}"
    if not kind.file_okay:
        path.mkdir(exist_ok=True)
    elif kind.exists or not kind.dir_okay or True:
        path = path.with_suffix(".json")
        path.write_text("{}")
    return path


def sample(param: click.Parameter, tmp_path: Path):
    """(command-line words, the value the handler must receive) for a non-default value of ``param``."""
    kind = param.type
    default = param.default
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts:
        return [param.opts[0]], True
    if isinstance(param, click.Option) and param.is_flag:  # --x/--no-x: give the one that is not the default
        return ([param.secondary_opts[0]], False) if default else ([param.opts[0]], True)
    if isinstance(kind, click.Choice):
        choices = list(kind.choices)
        defaults = set(default) if isinstance(default, (tuple, list)) else {default}
        value = next(c for c in reversed(choices) if c not in defaults) if param.multiple and len(choices) > len(defaults) \
            else next((c for c in reversed(choices) if c not in defaults), choices[0])
        words, expected = [value], value
    elif isinstance(kind, click.Path):
        path = sample_path(param, tmp_path)
        words, expected = [str(path)], path
    elif isinstance(kind, (click.IntRange, click.FloatRange)):
        low = kind.min if kind.min is not None else 0
        high = kind.max
        candidates = [low + 1, low + 2] + ([(low + high) / 2, (3 * low + high) / 4] if high is not None else [])

        def inside(v):  # within the range, open ends excluded
            above = v > low if kind.min_open else v >= low
            below = high is None or (v < high if kind.max_open else v <= high)
            return above and below

        value = next(v for v in candidates if inside(v) and v != default)
        value = int(value) if isinstance(kind, click.IntRange) else float(value)
        words, expected = [str(value)], value
    elif kind is click.INT:
        value = 7 if default != 7 else 8
        words, expected = [str(value)], value
    elif kind is click.FLOAT:
        value = 7.5 if default != 7.5 else 8.5
        words, expected = [str(value)], value
    else:
        value = "walked-value"
        words, expected = [value], value
    if param.multiple:
        expected = (expected,)
    if isinstance(param, click.Option):
        words = [param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0], *words]
    return words, expected


def required_arguments(command: click.Command, tmp_path: Path, skip: str = "") -> list[str]:
    """Words for the command's arguments and its required options (other than ``skip``)."""
    words = []
    for param in command.params:
        if isinstance(param, click.Option) and param.required and param.name != skip:
            words += sample(param, tmp_path)[0]
        elif isinstance(param, click.Argument):
            count = 3 if param.nargs == -1 else 1
            for k in range(count):
                if isinstance(param.type, click.Path):
                    words.append(str(sample_path(param, tmp_path, k)))
                else:
                    words.append("la2a")
    return words


CASES = [(path, param.name) for path, command in COMMANDS.items() for param in command.params
         if isinstance(param, click.Option) and param.name not in SKIPPED_OPTIONS]


@pytest.mark.parametrize("path, name", CASES, ids=[" ".join(p) + " " + n for p, n in CASES])
def test_option_reaches_its_handler(path, name, tmp_path, monkeypatch):
    command = COMMANDS[path]
    param = next(p for p in command.params if p.name == name)
    words, expected = sample(param, tmp_path)
    received = {}
    monkeypatch.setattr(command, "callback", lambda **kwargs: received.update(kwargs))
    result = CliRunner().invoke(main, [*path, *required_arguments(command, tmp_path, skip=name), *words])
    assert result.exit_code == 0, result.output
    assert received[name] == expected, (name, received)


def test_global_options_reach_the_tables(tmp_path):
    result = CliRunner().invoke(main, ["--format", "csv", "models"])
    assert result.exit_code == 0 and result.output.startswith("model,parent,parameters"), result.output
    result = CliRunner().invoke(main, ["--format", "json", "models"])
    assert result.output.lstrip().startswith("{"), result.output


def handler_source(command: click.Command) -> ast.FunctionDef:
    function = inspect.unwrap(command.callback)
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))


@pytest.mark.parametrize("path", list(COMMANDS), ids=[" ".join(p) for p in COMMANDS])
def test_every_option_is_used_by_its_handler(path):
    definition = handler_source(COMMANDS[path])
    parameters = [a.arg for a in definition.args.args + definition.args.kwonlyargs]
    read = {node.id for statement in definition.body for node in ast.walk(statement)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    ignored = [p for p in parameters if p not in read]
    assert not ignored, f"{' '.join(path)}: accepted and ignored: {ignored}"


def test_the_walk_covers_every_command():
    names = {" ".join(p) for p in COMMANDS}
    assert {"fit", "fit-map", "evaluate", "process", "export plugin", "export neural", "bench rtf", "train",
            "train-hybrid", "check", "capture", "generate-dataset", "stimulus", "models", "warmup"} <= names
    assert len(CASES) > 80
