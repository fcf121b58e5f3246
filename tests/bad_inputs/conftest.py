"""Shared fixtures of the bad-input tier.

- ``project``: a tiny ``kind: custom`` project (params.yaml, two feature tables, a label table)
  in a temp folder, already split and trained (copied from one session-wide template, so each
  case starts from the same valid state in milliseconds); the test runs inside it (chdir).
- ``run_stage``: runs a stage CLI in-process through ``stages._cli.run`` and returns its exit
  code and stderr; ``run_cli`` runs it as a subprocess where the real exit path matters.
- ``snapshot`` / ``assert_no_output``: a bad input must leave no file added or changed.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from amc.data.store import TMP_SUFFIX
from tests.helpers import toy_dataset

REPO = Path(__file__).resolve().parents[2]
DATASET = "mine"


@dataclass
class StageResult:
    code: int
    stderr: str


@dataclass
class Project:
    """A tiny custom-dataset project; paths are relative to ``root`` (the working directory)."""

    root: Path

    @property
    def features(self) -> dict[str, Path]:
        return {m: Path(DATASET) / f"{m}.parquet" for m in ("a", "b")}

    @property
    def labels(self) -> Path:
        return Path(DATASET) / "labels.parquet"

    @property
    def splits(self) -> Path:
        return Path("data/splits") / f"{DATASET}.parquet"

    def checkpoint(self, seed: int = 0) -> Path:
        return Path("models") / DATASET / "amc" / f"seed{seed}.pt"

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def write_params(self, params: dict[str, Any]) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params))

    def dataset(self, **changes: Any) -> None:
        """Change keys of ``datasets.mine`` in params.yaml."""
        params = self.params()
        params["datasets"][DATASET].update(changes)
        self.write_params(params)


def _tiny_params(task: str) -> dict[str, Any]:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["split"]["seeds"] = [0]
    params["model"].update(hidden=16, heads=2, tokens=4, experts=2)
    params["train"].update(epochs=2, warmup_epochs=1, batch_size=16, workers=1, num_threads=1)
    params["datasets"] = {
        DATASET: {
            "kind": "custom",
            "task": task,
            "modalities": {m: f"{DATASET}/{m}.parquet" for m in ("a", "b")},
            "labels": f"{DATASET}/labels.parquet",
            "features_dir": DATASET,
        }
    }
    params["variants"] = {}  # the repository's variants name its own datasets
    return params


def build_project(root: Path, task: str = "classification", stages: tuple[str, ...] = ()) -> None:
    """Write a tiny valid project under ``root`` and run ``stages`` (e.g. split, train) in it."""
    root.mkdir(parents=True, exist_ok=True)
    toy_dataset(root / DATASET, n=48, task=task, missing=0.2, signal=3.0)
    (root / "params.yaml").write_text(yaml.safe_dump(_tiny_params(task)))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for stage in stages:
            importlib.import_module(f"stages.{stage}").main([DATASET])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def _template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template") / "project"
    build_project(root, stages=("split", "train"))
    return root


@pytest.fixture()
def project(_template, tmp_path, monkeypatch) -> Project:
    root = tmp_path / "project"
    shutil.copytree(_template, root)
    monkeypatch.chdir(root)
    return Project(root)


@pytest.fixture()
def run_stage(capsys, monkeypatch) -> Callable[..., StageResult]:
    """``run_stage("split", "mine")``: the stage's CLI in-process; exit code and stderr."""

    def call(stage: str, *args: str) -> StageResult:
        from stages._cli import run

        module = importlib.import_module(f"stages.{stage}")
        monkeypatch.setattr(sys, "argv", [f"stages.{stage}", *args])
        capsys.readouterr()
        try:
            run(module.main)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return StageResult(code, capsys.readouterr().err)

    return call


def run_cli(root: Path, stage: str, *args: str, **kwargs: Any) -> StageResult:
    """The stage as ``python -m stages.<stage>`` in ``root`` (for real exit paths and limits)."""
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        # a child under a file-size limit must not leave truncated bytecode in the repository
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    return StageResult(done.returncode, done.stderr)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (but bytecode) -> (size, mtime_ns)."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            out[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


def assert_no_output(root: Path, before: dict[str, tuple[int, int]]) -> None:
    """No file was added, changed or removed since ``before``, and no temporary is left."""
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    removed = sorted(set(before) - set(after))
    assert not added and not changed and not removed, (added, changed, removed)
    assert not [p for p in after if p.endswith(TMP_SUFFIX)]


def assert_failed(result: StageResult, code: int, *names: str) -> None:
    """Exit ``code``, one ``error:`` message naming every string of ``names``, no traceback."""
    assert result.code == code, result.stderr
    assert "error: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert name in result.stderr, (name, result.stderr)
