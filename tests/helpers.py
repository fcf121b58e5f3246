"""Small builders shared by tests (and by CI's pipeline checks): feature tables and label tables
in the store's format, the benchmark scripts imported as modules, and the stages a DVC log ran."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from amc.data.store import write_features, write_table


def toy_dataset(
    root: Path,
    n: int = 120,
    seed: int = 0,
    task: str = "classification",
    missing: float = 0.0,
    signal: float = 1.5,
) -> tuple[dict[str, Path], Path]:
    """Two vector modalities carrying a label signal; ``missing`` drops patients per modality."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:04d}" for i in range(n)], dtype=object)
    latent = rng.normal(size=n)
    files = {}
    for m, dim in (("a", 12), ("b", 20)):
        x = rng.normal(size=(n, dim)).astype(np.float32)
        x[:, :3] += signal * latent[:, None]
        keep = rng.random(n) >= missing if m == "b" else np.ones(n, dtype=bool)
        path = root / f"{m}.parquet"
        write_features(path, ids[keep], x[keep], {"extractor": "toy"})
        files[m] = path
    if task == "classification":
        labels = pd.DataFrame({"patient_id": ids, "label": (latent > 0).astype(int)})
    else:
        time = rng.exponential(365 * np.exp(-signal * latent)) + 1
        event = (rng.random(n) < 0.7).astype(int)
        labels = pd.DataFrame({"patient_id": ids, "time": time, "event": event})
    labels_path = root / "labels.parquet"
    write_table(labels, labels_path)
    return files, labels_path


def custom_dataset(folder: Path, task: str = "classification", **toy: object) -> dict:
    """A params ``datasets`` entry of ``kind: custom`` over a :func:`toy_dataset` written to
    ``folder`` (``toy``: its keyword arguments)."""
    files, labels = toy_dataset(folder, task=task, **toy)
    return {
        "kind": "custom",
        "task": task,
        "modalities": {k: str(v) for k, v in files.items()},
        "labels": str(labels),
        "features_dir": str(folder),
    }


def stages_ran(log: str) -> set[str]:
    """The stages a ``dvc repro`` / ``dvc exp run`` log says it ran, by name without their
    dvc.yaml (run stages live in ``pipelines/*/dvc.yaml``: ``pipelines/amc/dvc.yaml:run@x`` is
    ``run@x``)."""
    return {s.rsplit(":", 1)[-1] for s in re.findall(r"Running stage '([^']+)'", log)}


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextmanager
def benchmark_module(name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py imported as a module (the folder is not a package), registered in
    ``sys.modules`` while in use (dataclasses and pickling look modules up there)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
