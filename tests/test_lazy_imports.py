"""The baseline and Neutone export modules (and the CLI that offers them) import no optional package."""

import subprocess
import sys


def test_baseline_and_neutone_modules_import_neither_torch_nor_the_sdk_nor_pedalboard():
    code = ("import sys, dynamatch.cli, dynamatch.maps.baseline, dynamatch.export.neutone; "
            "loaded = [m for m in ('torch', 'neutone_sdk', 'pedalboard') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_fit_commands_imports_leave_out_scipy_special_linalg_and_matplotlib():
    """What `dynamatch fit` imports before it reads audio (matplotlib only when it plots, after the fit;
    scipy.fft by the alignment when it runs): scipy.special alone cost 0.3 s (it pulls scipy.linalg)."""
    code = ("import sys, dynamatch.cli, dynamatch.fitting, dynamatch.data.audio, dynamatch.models.model_file; "
            "loaded = [m for m in ('scipy.special', 'scipy.linalg', 'matplotlib') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
