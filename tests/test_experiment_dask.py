"""A real Dask LocalCluster on loopback runs a sweep and gives the same results as the local pool."""

import io

import pandas as pd
import pytest
from experiment_support import GRID, write_spec

from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.spec import load_spec
from sim.experiment.store import load_market, load_providers, load_runs

pytest.importorskip("distributed")
pytestmark = pytest.mark.distributed


def test_local_cluster_sweep_equals_serial_sweep(tmp_path):
    spec = write_spec(tmp_path, GRID)
    plan = Plan.make(load_spec(spec))
    logs = []
    tally = run_sweep(plan, tmp_path / "dask", workers=2, scheduler="local",
                      progress=Progress(plan.runs, stream=io.StringIO(), tty=False), log=logs.append)
    assert tally.ok == plan.runs and tally.failed == 0
    assert any("Dask LocalCluster at tcp://127.0.0.1" in line for line in logs)
    runs = load_runs(tmp_path / "dask")
    assert runs["worker"].nunique() == 2  # both Dask worker processes ran runs

    run_sweep(plan, tmp_path / "serial", workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False),
              log=lambda *_: None)
    for load in (load_providers, load_market):
        pd.testing.assert_frame_equal(load(tmp_path / "dask"), load(tmp_path / "serial"))
