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
    """What `dynamatch fit` imports before it reads audio (matplotlib is preloaded in a thread, scipy.fft
    by the alignment when it runs): scipy.special alone cost 0.3 s (it pulls scipy.linalg)."""
    code = ("import sys, dynamatch.cli, dynamatch.fitting, dynamatch.data.audio, dynamatch.models.model_file; "
            "loaded = [m for m in ('scipy.special', 'scipy.linalg', 'matplotlib') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_fit_command_preloads_matplotlib_only_for_short_captures():
    """Long captures import matplotlib after the fit (its memory stays off the fit's peak); short ones in a
    thread during it."""
    code = ("import sys, time, dynamatch.cli as cli; "
            "assert not cli.preload_plot(cli.PRELOAD_PLOT_MAX_SECONDS + 1); "
            "assert 'matplotlib' not in sys.modules; "
            "assert cli.preload_plot(30.0); "
            "deadline = time.time() + 60\n"
            "while 'matplotlib.pyplot' not in sys.modules and time.time() < deadline: time.sleep(0.01)\n"
            "assert 'matplotlib.pyplot' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
