"""amc.cores: the CPU cores this process may use, without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from amc import cores, runtime

ROOT = Path(__file__).resolve().parents[1]


def test_available_cores_follows_the_affinity_not_the_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert cores.available_cores() == 1
    assert runtime.available_cores is cores.available_cores  # one implementation


def test_available_cores_falls_back_to_the_cpu_count_off_linux(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cores.available_cores() == 1


def test_importing_it_loads_no_torch():
    """The synthetic generators and the DuckDB lab extraction use it in torch-free stages."""
    code = "import sys, amc.cores; sys.exit('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0
