"""Scale-out on Dask: the distributed fit-map equals the serial one, and a killed run resumes."""

import json

import numpy as np
import pytest
from skips import require_module

from dynamatch.data.datasets import open_dataset
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.maps.fit_map import fit_map, progress_path
from dynamatch.parallel import SerialExecutor, executor

require_module("distributed")

CHAIN = [80.0, 60.0, 40.0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = generate_signaltrain_like(tmp_path_factory.mktemp("st"), duration_seconds=10.0, peak_reductions=[40, 60, 80])
    return open_dataset(root)


@pytest.fixture(scope="module")
def serial_map(dataset, tmp_path_factory):
    return fit_map(dataset, tmp_path_factory.mktemp("serial") / "map.json", chain=CHAIN)


@pytest.fixture(scope="module")
def cluster():
    with executor(workers=2, processes=False, threads_per_task=1) as pool:
        yield pool


def _assert_same_map(a, b, rtol=0.0):
    assert set(a.modes) == set(b.modes) == {"compress", "limit"}
    for mode in a.modes:
        for name, values in a.modes[mode].items():
            np.testing.assert_allclose(b.modes[mode][name], values, rtol=rtol, atol=0, err_msg=f"{mode} {name}")


def test_dask_map_is_identical_to_serial(dataset, serial_map, cluster, tmp_path):
    started = []
    parallel = fit_map(dataset, tmp_path / "map.json", chain=CHAIN, executor=cluster,
                       on_start=lambda mode, pr, i, n: started.append((mode, pr)))
    _assert_same_map(serial_map, parallel)
    # each chain kept its order (the warm start of a setting is its predecessor's result)
    for mode in ("compress", "limit"):
        assert [pr for m, pr in started if m == mode] == CHAIN
    # the serial executor through the same driver gives the same map too
    _assert_same_map(serial_map, fit_map(dataset, tmp_path / "s.json", chain=CHAIN, executor=SerialExecutor()))


class _Killed(Exception):
    pass


def test_killed_dask_run_resumes_and_computes_only_the_rest(dataset, serial_map, cluster, tmp_path):
    output = tmp_path / "map.json"
    seen = []

    def die_after_three(fit, index, total):
        seen.append(fit)
        if len(seen) == 3:
            raise _Killed  # as if the client were killed right after the third progress write

    with pytest.raises(_Killed):
        fit_map(dataset, output, chain=CHAIN, executor=cluster, on_setting=die_after_three)
    assert not output.exists()
    done_before = {(f["mode"], f["peak_reduction"]) for f in json.loads(progress_path(output).read_text())["fits"]}
    assert len(done_before) == 3
    refitted = []
    resumed = fit_map(dataset, output, chain=CHAIN, executor=cluster,
                      on_start=lambda mode, pr, i, n: refitted.append((mode, pr)))
    assert not done_before & set(refitted)
    assert len(refitted) == 2 * len(CHAIN) - 3
    _assert_same_map(serial_map, resumed)


def test_cli_workers_and_scheduler_errors(dataset, serial_map, tmp_path):
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.maps import ParameterMap

    args = ["fit-map", str(dataset.root), "--chain", "80,60,40", "--no-plot"]
    result = CliRunner().invoke(main, args + ["-o", str(tmp_path / "m.json"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    # worker processes: not bit-identical to the in-process run yet (see the report); close to 1e-6
    _assert_same_map(serial_map, ParameterMap.load(tmp_path / "m.json"), rtol=1e-6)
    both = CliRunner().invoke(main, args + ["-o", str(tmp_path / "b.json"), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert both.exit_code == 2 and "not both" in both.output
