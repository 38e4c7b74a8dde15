"""The README's Python example runs as written (with the two files it names created first)."""

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from dynamatch import Compressor

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"## Python API\s+```python\n(.*?)```", README.read_text(), re.S).group(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100 * 4) * np.repeat(rng.uniform(0.01, 0.5, 40), 4410)
    sf.write(tmp_path / "dry.wav", x, 44100, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", Compressor(-20, 3, 5, 100, 1).process(x, 44100), 44100, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert namespace["result"].success
    assert namespace["capture"].result.success
    assert "threshold_db" in capsys.readouterr().out


# -- the README's commands and options are the CLI's -------------------------------------------------------


def _cli_commands():
    import click

    from dynamatch.cli import main

    found = {}

    def walk(group, prefix):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, prefix + (name,))
            found[prefix + (name,)] = command

    walk(main, ())
    global_options = {opt for p in main.params for opt in (*p.opts, *p.secondary_opts)}
    return found, global_options


def _options_of(command) -> set[str]:
    return {opt for p in command.params for opt in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))} | {
        "--help", "-h"}


def _documented_invocations(text: str):
    """(words, where) for every `dynamatch …` line of a code block and every inline `dynamatch …`/`COMMAND --opt` span."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("dynamatch "):
                found.append((line.split()[1:], line))
    for span in re.findall(r"`([^`\n]+)`", text):
        words = span.split()
        if words and words[0] == "dynamatch":
            found.append((words[1:], span))
        elif len(words) > 1 and any(w.startswith("--") for w in words[1:]):
            found.append((words, span))
    return found


def _resolve(words, commands):
    """The command the words name (longest match) and the words after it; None when they name no command."""
    for length in (2, 1):
        key = tuple(words[:length])
        if key in commands:
            return key, words[length:]
    return None, words




def test_readme_commands_and_options_exist():
    """Every `dynamatch COMMAND … --option` the README shows is a command of the CLI with that option
    (the README listed `evaluate --chain`, which does not exist)."""
    commands, global_options = _cli_commands()
    problems = []
    checked = 0
    for words, where in _documented_invocations(README.read_text()):
        while words and words[0].startswith("--") and words[0].split("=")[0] in global_options:
            words = words[2:] if "=" not in words[0] and words[0] == "--format" else words[1:]
        key, rest = _resolve(words, commands)
        if key is None:
            if where.startswith("dynamatch") and words and words[0] not in ("COMMAND", "…"):
                problems.append(f"no command: {where}")
            continue
        known = _options_of(commands[key]) | global_options
        for word in rest:
            option = word.split("=")[0].rstrip(",.;)")
            if option.startswith("--") and option not in known:
                problems.append(f"{' '.join(key)} has no option {option}: {where}")
        checked += 1
    assert checked > 30
    assert not problems, "\n".join(problems)


def test_every_command_is_in_the_readme():
    commands, _ = _cli_commands()
    text = README.read_text()
    missing = [" ".join(key) for key, command in commands.items()
               if not getattr(command, "commands", None) and f"dynamatch {' '.join(key)}" not in text]
    assert not missing, f"commands the README never shows: {missing}"


def test_readme_option_check_can_fail():
    commands, global_options = _cli_commands()
    key, rest = _resolve("evaluate data/ --chain 100:40:5".split(), commands)
    assert key == ("evaluate",) and "--chain" not in _options_of(commands[key]) | global_options
