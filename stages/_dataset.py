"""Turn one dataset's resolved params into library objects (cohort, settings, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from amc import config
from amc.data.cohort import Cohort, load_cohort
from amc.data.splits import check_split_table
from amc.data.store import read_table
from amc.errors import InputError
from stages.params import labels_file, modality_files

if TYPE_CHECKING:
    from amc.config import TrainSettings

SPLITS_DIR = Path("data/splits")
RUNS_DIR = Path("reports/runs")
METRICS_DIR = Path("reports/metrics")


def run_dir(run: dict[str, Any]) -> Path:
    """reports/runs/<dataset>/<method>: one run's predictions, run.json, curves and plots."""
    return RUNS_DIR / run["name"] / run["method"]


def metrics_file(dataset: str, method: str) -> Path:
    """reports/metrics/<dataset>/<method>.json: one run's test metrics over seeds (a DVC metric).

    Outside the run's folder: the folder is one DVC output and a metric must be an output of
    its own, and `dvc metrics show` then lists one file per run."""
    return METRICS_DIR / dataset / f"{method}.json"


def model_dir(run: dict[str, Any]) -> Path:
    """models/<dataset>/<method>: one checkpoint per split seed."""
    return Path("models") / run["name"] / run["method"]


def cohort_for(ds: dict[str, Any]) -> Cohort:
    """The cohort of a dataset item or run (its modalities, drop_incomplete / drop_unmatched)."""
    return load_cohort(
        modality_files(ds),
        labels_file(ds),
        ds["task"],
        drop_incomplete=bool(ds.get("drop_incomplete", False)),
        drop_unmatched=bool(ds.get("drop_unmatched", False)),
        project=ds.get("project"),
        bags=[m for m, kind in (ds.get("encoders") or {}).items() if kind == "bag"],
    )


def split_file(name: str) -> Path:
    return SPLITS_DIR / f"{name}.parquet"


def split_for_seed(name: str, cohort: Cohort, seed: int, path: Path | None = None) -> np.ndarray:
    """(P,) split names of ``cohort``'s patients for one seed, from ``path`` (default
    data/splits/<name>.parquet)."""
    path = path or split_file(name)
    splits = check_split_table(read_table(path), str(path))
    rows = splits[splits["seed"] == seed].set_index("patient_id")["split"]
    if rows.empty:
        raise InputError(
            f"{path}: no split for seed {seed}",
            hint=f"run `dvc repro split@{name}` after changing split.seeds",
        )
    assigned = rows.reindex(pd.Index(cohort.patient_ids.astype(str)))
    if assigned.isna().any():
        missing = cohort.patient_ids[assigned.isna().to_numpy()][0]
        raise InputError(
            f"{path}: patient {missing!r} has no split",
            hint=f"the cohort changed: run `dvc repro split@{name}`",
        )
    return assigned.to_numpy(dtype=object)


def train_settings(ds: dict[str, Any]) -> TrainSettings:
    """Optimisation settings of a resolved dataset item (built from the params schema)."""
    return config.train_settings(ds)


def model_kwargs(ds: dict[str, Any]) -> dict[str, Any]:
    """AMCConfig fields from the model / fusion / loss blocks (built from the params schema)."""
    return config.model_kwargs(ds)
