"""Cohort assembly: feature tables + label table -> aligned arrays with a ``present`` mask.

A patient missing from a modality's table is kept with zeros there and ``present`` False
(the paper's missing-modality setting, Table 9), unless ``drop_incomplete`` asks to drop them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from amc.data import checks
from amc.data.store import read_features, read_table
from amc.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Cohort:
    """Aligned multimodal data of one dataset.

    patient_ids: (P,) str. features: name -> (P, F) or (P, X, Y, Z) float32 (zeros where absent).
    present: (P, M) bool in ``modalities`` order. Targets: ``labels`` (P,) int64 class index with
    ``class_names``, or ``time`` (P,) float and ``event`` (P,) int (1 = observed).
    """

    patient_ids: np.ndarray
    modalities: list[str]
    features: dict[str, np.ndarray]
    present: np.ndarray
    task: str
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    metadata: dict[str, dict] = field(default_factory=dict)
    bags: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patient_ids)

    @property
    def strata(self) -> np.ndarray:
        """What splits are stratified by: the class, or the event flag for survival."""
        return self.labels if self.task == "classification" else self.event

    def subset(self, index: np.ndarray) -> Cohort:
        """Rows ``index`` of every array."""

        def take(a):
            return None if a is None else a[index]

        return Cohort(
            patient_ids=self.patient_ids[index],
            modalities=self.modalities,
            features={k: v[index] for k, v in self.features.items()},
            present=self.present[index],
            task=self.task,
            labels=take(self.labels),
            class_names=self.class_names,
            time=take(self.time),
            event=take(self.event),
            metadata=self.metadata,
            bags={k: (b[index], m[index]) for k, (b, m) in self.bags.items()},
        )


def read_labels(path: Path, task: str) -> pd.DataFrame:
    """Label table: ``patient_id, label`` (classification) or ``patient_id, time, event``."""
    df = read_table(path)
    needed = (
        ["patient_id", "label"] if task == "classification" else ["patient_id", "time", "event"]
    )
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}",
            hint=f"a {task} label table needs columns {needed}",
        )
    checks.check_not_empty(len(df), path, "label")
    df = df.copy()
    df["patient_id"] = checks.patient_ids(df["patient_id"], path)
    if task == "classification":
        missing_label = df["label"].isna() | (df["label"].astype(str).str.strip() == "")
        if missing_label.any():
            bad = df.loc[missing_label, "patient_id"].iloc[0]
            raise InputError(
                f"{path}: patient {bad!r} has no label ({int(missing_label.sum())} unlabelled)",
                hint="drop or label it",
            )
    else:
        df["time"] = checks.numeric_column(
            df, "time", path, hint="time must be a finite number of days"
        )
        df["event"] = checks.numeric_column(
            df, "event", path, hint="event must be 0/1 (1 = death observed)"
        )
        if (df["time"] < 0).any():
            bad = df.loc[df["time"] < 0, "patient_id"].iloc[0]
            raise InputError(
                f"{path}: patient {bad!r} has a negative time",
                hint="survival times are days from diagnosis, >= 0",
            )
        not_binary = ~df["event"].isin([0, 1])
        if not_binary.any():
            raise InputError(
                f"{path}: patient {df.loc[not_binary, 'patient_id'].iloc[0]!r} has event "
                f"{df.loc[not_binary, 'event'].iloc[0]!r}; column 'event' must hold 0/1",
                hint="1 = death observed, 0 = censored",
            )
    return df


def class_order(labels: pd.Series) -> list[str]:
    """Class names in a stable order: numeric order for numbers, else sorted strings."""
    values = labels.dropna().unique().tolist()
    try:
        return [str(v) for v in sorted(values, key=float)]
    except (TypeError, ValueError):
        return sorted(str(v) for v in values)


def load_cohort(
    feature_files: dict[str, Path],
    labels_path: Path,
    task: str,
    drop_incomplete: bool = False,
    project: str | None = None,
    drop_unmatched: bool = False,
    bags: Iterable[str] = (),
) -> Cohort:
    """Assemble a cohort from feature tables and a label table.

    Parameters
    ----------
    feature_files
        Modality name -> feature Parquet (format: :mod:`amc.data.store`).
    labels_path
        Label table (see :func:`read_labels`); a ``project_id`` column is filtered by
        ``project`` when given (TCGA holds all projects in one table).
    drop_incomplete
        Drop patients lacking any modality instead of masking it.
    drop_unmatched
        Drop (and log) labelled patients found in no feature table, instead of stopping with an
        error (ADNI lists subjects in the diagnosis table only).
    bags
        Modalities whose ``patches`` bag column is read too (see :mod:`amc.data.bags`).
    """
    labels = read_labels(Path(labels_path), task)
    if project is not None:
        if "project_id" not in labels.columns:
            raise InputError(f"{labels_path}: no project_id column to select {project!r}")
        labels = labels[labels["project_id"] == project]
        if labels.empty:
            raise InputError(
                f"{labels_path}: no patient of project {project!r}",
                hint="check datasets.<item>.project",
            )
    labels = labels.sort_values("patient_id").reset_index(drop=True)
    ids = labels["patient_id"].to_numpy(dtype=object)
    index = pd.Index(ids)
    names = list(feature_files)
    present = np.zeros((len(ids), len(names)), dtype=bool)
    features: dict[str, np.ndarray] = {}
    metadata: dict[str, dict] = {}
    bag_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m, name in enumerate(names):
        features[name], present[:, m], metadata[name] = _read_modality(
            Path(feature_files[name]), index, labels_path
        )
        if name in set(bags):
            bag_arrays[name] = _aligned_bags(Path(feature_files[name]), index, len(ids))
        log.info("%s: %d/%d labelled patients present", name, int(present[:, m].sum()), len(ids))
    nowhere = ~present.any(axis=1)
    if nowhere.any() and drop_unmatched:
        log.info(
            "%d labelled patients have no features in any modality: dropped", int(nowhere.sum())
        )
    elif nowhere.any():
        raise InputError(
            f"{labels_path}: {int(nowhere.sum())} labelled patient(s) have no features in any "
            f"modality, e.g. {ids[nowhere][0]!r}",
            hint="drop them from the label table, or check patient_id formats across tables",
        )
    keep = ~nowhere
    if drop_incomplete:
        keep = present.all(axis=1)
        log.info("drop_incomplete: dropping %d patients lacking a modality", int((~keep).sum()))
    cohort = Cohort(
        patient_ids=ids,
        modalities=names,
        features=features,
        present=present,
        task=task,
        metadata=metadata,
        bags=bag_arrays,
    )
    _attach_targets(cohort, labels, labels_path)
    cohort = cohort.subset(np.flatnonzero(keep))
    if len(cohort) == 0:
        raise InputError(f"{labels_path}: no patient left", hint="check drop_incomplete")
    return cohort


def _read_modality(
    path: Path, index: pd.Index, labels_path: Path
) -> tuple[np.ndarray, np.ndarray, dict]:
    """One feature table aligned to the labelled patients ``index`` (of ``labels_path``).

    Returns
    -------
    features
        (P, ...) float32, zeros for patients without the modality.
    present
        (P,) bool.
    metadata
        The table's ``amc:`` metadata.
    """
    pids, feats, meta = read_features(path)
    bad_rows = ~np.isfinite(feats.reshape(len(pids), -1)).all(axis=1)
    if bad_rows.any():
        raise InputError(
            f"{path}: patient {pids[bad_rows][0]!r} has NaN/inf features",
            hint="fix the extractor or impute before writing the table",
        )
    pos = index.get_indexer(pids.astype(str))
    known = pos >= 0
    if not known.any():
        raise InputError(
            f"{path}: none of its {len(pids)} patient ids is in the label table "
            f"{labels_path} (e.g. {pids[0]!r} vs {index[0]!r})",
            hint="use the same patient_id format in every table",
        )
    if (~known).any():
        log.info("%s: %d patients have no label and are ignored", path, int((~known).sum()))
    out = np.zeros((len(index), *feats.shape[1:]), dtype=np.float32)
    out[pos[known]] = feats[known]
    present = np.zeros(len(index), dtype=bool)
    present[pos[known]] = True
    return out, present, meta


def _attach_targets(cohort: Cohort, labels: pd.DataFrame, labels_path: Path) -> None:
    """Class indices and names (classification) or time and event (survival), in place."""
    if cohort.task == "classification":
        cohort.class_names = class_order(labels["label"])
        lookup = {c: i for i, c in enumerate(cohort.class_names)}
        cohort.labels = labels["label"].astype(str).map(lookup).to_numpy(dtype=np.int64)
        if len(cohort.class_names) < 2:
            raise InputError(
                f"{labels_path}: only one class {cohort.class_names}",
                hint="classification needs at least two classes",
            )
    else:
        cohort.time = labels["time"].to_numpy(dtype=np.float64)
        cohort.event = labels["event"].to_numpy(dtype=np.int64)


def _aligned_bags(path: Path, index: pd.Index, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A table's patch bags in the cohort's patient order (empty bags where absent)."""
    from amc.data.bags import read_bags

    pids, bag, mask = read_bags(path)
    pos = index.get_indexer(pids.astype(str))
    known = pos >= 0
    out = np.zeros((n, *bag.shape[1:]), np.float32)
    out_mask = np.zeros((n, bag.shape[1]), bool)
    out[pos[known]], out_mask[pos[known]] = bag[known], mask[known]
    return out, out_mask


def check_modalities_in_splits(cohort: Cohort, split: np.ndarray, context: str) -> None:
    """Every modality needs at least one present patient in every split.

    A modality absent for a whole split cannot be scaled (train) or says nothing (val / test);
    stop with a clear message instead of training on zeros.
    """
    for name in np.unique(split):
        rows = split == name
        for m, modality in enumerate(cohort.modalities):
            if not cohort.present[rows, m].any():
                raise InputError(
                    f"{context}: modality {modality!r} is missing for every patient of the "
                    f"{name} split ({int(rows.sum())} patients)",
                    hint="check the modality's feature table and patient_id format, or drop "
                    "the modality from datasets.<item>.modalities",
                )
