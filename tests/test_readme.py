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
