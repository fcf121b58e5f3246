"""Patient-level, stratified train / val / test splits, one per seed.

The number of patients of each stratum in each split is fixed once (largest-remainder style
apportionment that hits the overall split sizes exactly and puts at least one patient of every
stratum in every split); each seed then shuffles the members of each stratum with its own
generator. Ids are sorted first, so the result depends only on the set of (id, stratum) pairs
and the seed, not on the input order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from amc.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "check_split_has_classes", "check_split_table", "make_splits", "split_sizes"]

#: Split names, in order.
SPLITS: tuple[str, str, str] = ("train", "val", "test")

_MIN_PER_STRATUM = 3
_HINT_TINY = (
    "every class (event flag for survival) needs at least 3 patients, one per split: "
    "add patients, merge or drop the rare class"
)


def split_sizes(n_patients: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Overall (train, val, test) sizes: val and test rounded, train takes the rest.

    Parameters
    ----------
    n_patients : int
        Number of patients P.
    fractions : sequence of 3 float
        Train / val / test fractions, positive, summing to 1.

    Returns
    -------
    tuple[int, int, int]
        Sizes summing to P, each within 1 patient of ``P * fraction``.
    """
    frac = _check_fractions(fractions)
    n_val = int(round(n_patients * frac[1]))
    n_test = int(round(n_patients * frac[2]))
    return n_patients - n_val - n_test, n_val, n_test


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or np.any(~np.isfinite(frac)) or np.any(frac <= 0):
        raise InputError(
            f"split fractions {list(fractions)} must be three positive numbers",
            hint="e.g. split.fractions: [0.7, 0.15, 0.15]",
        )
    if abs(frac.sum() - 1.0) > 1e-6:
        raise InputError(
            f"split fractions {list(fractions)} sum to {frac.sum():g}, not 1",
            hint="e.g. split.fractions: [0.7, 0.15, 0.15]",
        )
    return frac


def _allocate(counts: np.ndarray, totals: tuple[int, int, int]) -> np.ndarray:
    """Per-stratum split sizes (K, 3): rows sum to ``counts``, columns to ``totals``, all >= 1.

    Starts from the floor of the proportional share and moves single patients between train
    and val / test, always to or from the stratum whose share is furthest from its ideal.
    Feasible whenever every count >= 3 and every total >= K (checked by the caller).
    """
    n = counts.sum()
    ideal = counts[:, None] * np.asarray(totals, dtype=np.float64)[None, :] / n
    alloc = np.maximum(np.floor(ideal).astype(np.int64), 1)
    for s in (1, 2):  # val, test; train is the remainder of each row
        alloc[:, s] = np.minimum(alloc[:, s], counts - 2)
    for s in (1, 2):  # too many (from the floor of 1): give back where most over ideal
        while alloc[:, s].sum() > totals[s]:
            over = np.where(alloc[:, s] > 1, alloc[:, s] - ideal[:, s], -np.inf)
            alloc[int(np.argmax(over)), s] -= 1
    for s in (1, 2):  # too few: take from train where most under ideal
        while alloc[:, s].sum() < totals[s]:
            train = counts - alloc[:, 1] - alloc[:, 2]
            under = np.where(train > 1, ideal[:, s] - alloc[:, s], -np.inf)
            alloc[int(np.argmax(under)), s] += 1
    alloc[:, 0] = counts - alloc[:, 1] - alloc[:, 2]
    return alloc


def make_splits(
    patient_ids: Sequence[str] | np.ndarray | pd.Series,
    strata: np.ndarray | Sequence,
    seeds: Sequence[int],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
) -> pd.DataFrame:
    """Stratified patient-level train / val / test splits, one per seed.

    Parameters
    ----------
    patient_ids : sequence, shape (P,)
        Unique patient ids (converted to str).
    strata : array-like, shape (P,)
        Stratum per patient: the class label, or the event indicator for survival.
    seeds : sequence of int
        One split per seed; deterministic for a given seed.
    fractions : sequence of 3 float
        Train / val / test fractions (default 70/15/15).

    Returns
    -------
    pd.DataFrame
        Columns ``patient_id`` (str), ``seed`` (int64), ``split`` (``train`` / ``val`` /
        ``test``); P rows per seed, sorted by seed then patient_id. Overall split sizes are
        within one patient of ``P * fraction`` and every split holds every stratum; within a
        stratum the split sizes follow the fractions up to rounding.

    Raises
    ------
    InputError
        On a duplicate id, length mismatch, missing stratum, duplicate seed, bad fractions, a
        stratum with fewer than 3 patients, a single stratum overall, or a split too small to
        hold one patient of every stratum.
    """
    ids = pd.Series(patient_ids, dtype=object).astype(str).to_numpy()
    strata_arr = np.asarray(strata)
    seed_list = _check_inputs(ids, strata_arr, seeds)
    totals = split_sizes(ids.size, fractions)

    order = np.argsort(ids, kind="stable")
    ids, strata_arr = ids[order], strata_arr[order]
    classes, inverse, counts = np.unique(strata_arr, return_inverse=True, return_counts=True)
    summary = ", ".join(f"{c!r}: {n}" for c, n in zip(classes.tolist(), counts.tolist()))
    _check_strata(classes, counts, totals, summary)
    alloc = _allocate(counts, totals)
    logger.info(
        "splits over %d patients, classes {%s}: train/val/test = %s per seed",
        ids.size,
        summary,
        totals,
    )

    members = [np.flatnonzero(inverse == k) for k in range(classes.size)]
    frames = []
    for seed in seed_list:
        rng = np.random.default_rng(seed)
        split = np.empty(ids.size, dtype=object)
        for k, idx in enumerate(members):
            perm = idx[rng.permutation(idx.size)]
            bounds = np.cumsum(alloc[k])
            split[perm[: bounds[0]]] = SPLITS[0]
            split[perm[bounds[0] : bounds[1]]] = SPLITS[1]
            split[perm[bounds[1] :]] = SPLITS[2]
        frames.append(
            pd.DataFrame(
                {"patient_id": ids, "seed": np.full(ids.size, seed, dtype=np.int64), "split": split}
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["split"] = out["split"].astype(str)
    return out


def _check_inputs(ids: np.ndarray, strata_arr: np.ndarray, seeds: Sequence[int]) -> list[int]:
    """Raise on mismatched lengths, no patients, duplicate ids, NaN strata or bad seeds."""
    if strata_arr.ndim != 1 or strata_arr.shape[0] != ids.shape[0]:
        raise InputError(
            f"make_splits: {ids.shape[0]} patient ids but strata has shape {strata_arr.shape}",
            hint="pass one stratum (label or event flag) per patient",
        )
    if ids.size == 0:
        raise InputError("make_splits: no patients", hint="check the labels table")
    dup = pd.Series(ids)[pd.Series(ids).duplicated()]
    if len(dup):
        raise InputError(
            f"make_splits: duplicate patient_id {dup.iloc[0]!r} ({len(dup)} duplicates)",
            hint="splits are by patient: pass each patient once",
        )
    if pd.isna(pd.Series(strata_arr)).any():
        bad = ids[pd.isna(pd.Series(strata_arr)).to_numpy()][0]
        raise InputError(
            f"make_splits: patient {bad!r} has no label / event (NaN stratum)",
            hint="drop patients without a label or fix the labels table",
        )
    seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise InputError(
            f"make_splits: seeds {seed_list} must be non-empty and unique",
            hint="e.g. split.seeds: [0, 1, 2, 3, 4]",
        )
    return seed_list


def _check_strata(
    classes: np.ndarray, counts: np.ndarray, totals: Sequence[int], summary: str
) -> None:
    """Raise when a stratum is too small, there is one stratum, or a split cannot hold each."""
    tiny = counts < _MIN_PER_STRATUM
    if tiny.any():
        bad = ", ".join(
            f"{c!r} has {n}" for c, n in zip(classes[tiny].tolist(), counts[tiny].tolist())
        )
        raise InputError(f"make_splits: class {bad} patient(s) (counts {summary})", hint=_HINT_TINY)
    if classes.size < 2:
        raise InputError(
            f"make_splits: only one class ({summary}); every split would get only one class",
            hint="stratify by the label (or the event flag for survival), which must vary",
        )
    small = [name for name, tot in zip(SPLITS, totals) if tot < classes.size]
    if small:
        raise InputError(
            f"make_splits: split(s) {small} get {dict(zip(SPLITS, totals))} patients, fewer "
            f"than the {classes.size} classes ({summary}), so some split would lack a class",
            hint="add patients, merge rare classes or enlarge the val/test fractions",
        )


def check_split_has_classes(labels_by_split: Mapping[str, np.ndarray], dataset: str) -> None:
    """Raise when a split is empty or holds a single class.

    Parameters
    ----------
    labels_by_split : mapping of str to np.ndarray, shape (P_split,)
        Labels (or event flags) per split name.
    dataset : str
        Dataset name for the message.

    Raises
    ------
    InputError
        Naming the dataset, the split, its class counts and a hint. A class missing from one
        split but present in others is only logged as a warning.
    """
    seen: set = set()
    for labels in labels_by_split.values():
        seen.update(np.unique(np.asarray(labels)).tolist())
    for split, labels in labels_by_split.items():
        arr = np.asarray(labels)
        values, counts = np.unique(arr, return_counts=True)
        found = {v: int(c) for v, c in zip(values.tolist(), counts.tolist())}
        if arr.size == 0:
            raise InputError(
                f"{dataset}: split {split!r} is empty",
                hint="add patients or change split.fractions",
            )
        if values.size < 2:
            raise InputError(
                f"{dataset}: split {split!r} has only one class (counts {found})",
                hint="metrics need both outcomes: add patients of the other class(es), "
                "or regenerate the splits stratified by label (event flag for survival)",
            )
        missing = sorted(seen - set(found), key=str)
        if missing:
            logger.warning("%s: split %r lacks class(es) %s", dataset, split, missing)


def check_split_table(splits: pd.DataFrame, path: str) -> pd.DataFrame:
    """Validate a split table read back from disk: columns, split names, one row per (patient,
    seed). Returns it with ``patient_id`` as str and ``seed`` as int.

    Raises
    ------
    InputError
        Naming ``path`` and the offending column, split name or patient id.
    """
    needed = ["patient_id", "seed", "split"]
    missing = [c for c in needed if c not in splits.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}",
            hint="a split table has columns patient_id, seed, split: re-run the split stage",
        )
    if splits.empty:
        raise InputError(f"{path}: the split table has no rows", hint="re-run the split stage")
    out = splits.copy()
    out["patient_id"] = out["patient_id"].astype(str)
    unknown = ~out["split"].isin(SPLITS)
    if unknown.any():
        row = out[unknown].iloc[0]
        raise InputError(
            f"{path}: patient {row['patient_id']!r} (seed {row['seed']}) is in split "
            f"{row['split']!r}",
            hint=f"split names are {', '.join(SPLITS)}: re-run the split stage",
        )
    dup = out.duplicated(["patient_id", "seed"])
    if dup.any():
        row = out[dup].iloc[0]
        raise InputError(
            f"{path}: patient {row['patient_id']!r} appears twice for seed {row['seed']}",
            hint="a patient is in exactly one split per seed: re-run the split stage",
        )
    return out
