"""Pool workers end with the process they work for (sim.lifetime); the sweep's pool is tested in
test_experiment_store.py, the calibration pool here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from experiment_support import process_group

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys, time
from sim.calibration.replicate import process_pool
with process_pool(2) as pool:
    print(sorted(pool.map(abs, [-1, -2, -3, -4])), flush=True)  # both workers are up
    time.sleep(120)
"""


def _group(pgid: int) -> list[int]:
    return [pid for pid, _ in process_group(pgid)]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_calibration_pool_workers_exit_when_their_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "[1, 2, 3, 4]"
        assert len([p for p in _group(proc.pid) if p != proc.pid]) >= 2  # the workers (the check can fail)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _group(proc.pid)
    finally:
        for pid in _group(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} worker processes outlived their parent"
