"""A real Dask LocalCluster on loopback runs a sweep (in batches) and gives the same results as the local pool
(and as every run alone)."""

import io

import pandas as pd
import pytest
from experiment_support import GRID, write_spec

from sim.experiment.batching import BatchRule
from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.spec import load_spec
from sim.experiment.store import load_manifest, load_market, load_providers, load_runs

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
    assert load_manifest(tmp_path / "dask")["batching"]["batch_size"] == 2  # 12 runs, 2 workers: batches of 2

    # the reference runs every run alone (batches of one), in this process: batches on Dask change nothing
    run_sweep(plan, tmp_path / "serial", workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False),
              log=lambda *_: None, batching=BatchRule(plan.batch_rule().memory_budget, 1))
    for load in (load_providers, load_market):
        pd.testing.assert_frame_equal(load(tmp_path / "dask"), load(tmp_path / "serial"), check_exact=True)  # bit for bit


def test_existing_cluster_by_address_returns_tables_to_the_parent(tmp_path):
    """--scheduler tcp://...: workers may not share our disk, so the parent writes every part."""
    from distributed import LocalCluster

    spec = write_spec(tmp_path, GRID)
    plan = Plan.make(load_spec(spec))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        logs = []
        tally = run_sweep(plan, tmp_path / "remote", workers=0, scheduler=cluster.scheduler_address,
                          progress=Progress(plan.runs, stream=io.StringIO(), tty=False), log=logs.append)
    assert tally.ok == plan.runs
    assert any(f"Dask cluster at {cluster.scheduler_address}, 1 worker, 2 threads" in line for line in logs)
    run_sweep(plan, tmp_path / "serial", workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False),
              log=lambda *_: None)
    pd.testing.assert_frame_equal(load_providers(tmp_path / "remote"), load_providers(tmp_path / "serial"), check_exact=True)
    assert load_runs(tmp_path / "remote")["worker"].notna().all()
