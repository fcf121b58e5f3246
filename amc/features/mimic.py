"""MIMIC-IV (v2.2 / v3 layout) loaders and per-admission feature extractors.

Reads exactly what PhysioNet ships (gzip CSVs under ``hosp/`` and ``note/``), so the same code
runs on the synthetic cohort of :mod:`amc.synthetic.mimic` and on the real download.

Cohort and label
----------------
One row per patient: the index admission is the patient's FIRST admission by ``admittime``
(ties broken by ``hadm_id``) and ``patient_id = str(subject_id)``. The label is 1 when the
patient died within 365 days of the index ``admittime``: the death time is the earliest of
``admissions.deathtime`` (over all the patient's admissions) and ``patients.dod`` (a date, taken
at 00:00), and counts when it falls in ``[admittime's date, admittime + 365 days]``. A death
recorded before the admission's date is inconsistent data: it is counted in the log and does not
make the label positive.

Prediction time (no label leakage)
----------------------------------
Every feature is restricted to what is charted before the *prediction time* of the index
admission (:func:`parse_prediction_time`): ``"discharge"`` (default: ``dischtime``) or
``"admission+<H>h"`` (``admittime + H`` hours). Patients whose death time is at or before the
prediction time (in-hospital deaths at discharge time) are *excluded* by default
(``deaths_before_prediction="exclude"``): their discharge summary and billing codes describe the
death the label counts. ``"keep"`` keeps them with label 1 and logs a warning. The label itself
is unchanged (death within 365 days of ``admittime``).

Feature layouts
---------------
* ``lab``: for every itemid of ``d_labitems`` that has at least one numeric ``valuenum`` anywhere
  in ``labevents`` (sorted by itemid; the set depends on the file, never on the cohort or a
  split), six columns ``mean, min, max, last, count, missing`` over the numeric results of the
  index admission with ``admittime <= charttime <= min(admittime + window_hours, prediction
  time)``. Absent items have zeros and ``missing = 1``. Rows without ``hadm_id`` (outpatient
  labs) are not used. Nothing is scaled here: scaling is fitted on the training split.
* ``code``: multi-hot over a fixed hashed vocabulary: the token
  ``f"{kind}{version}:{code[:3]}"`` (``kind`` = ``dx`` for diagnoses_icd, ``px`` for
  procedures_icd; ``version`` = 9 or 10; the ICD category = first three characters of the
  dot-less code) goes to bucket ``zlib.crc32(token) % vocab_size``. The vocabulary is identical
  for every cohort, split and dataset; collisions are possible and accepted. ICD codes are
  assigned at discharge, so the index admission's codes are used only for admissions discharged
  at or before the prediction time (all of them at ``"discharge"``, none for a prediction time
  inside the stay). Tokens listed in ``exclude`` (default :data:`DEATH_CODE_TOKENS`: ICD
  categories that state a death) are never used.
* ``note``: the notes of the index admission whose type is in ``note_types`` (default
  ``["DS"]``, discharge summaries) and whose ``note_time`` column (default ``charttime``) is at or
  before the prediction time, joined in ``note_seq`` order, embedded with
  :func:`amc.features.text.embed_texts`; patients without a (non-empty) note are absent.
  MIMIC-IV-Note dates a discharge summary on the discharge *day* (``charttime`` at 00:00) and
  stores it hours to days later (``storetime``): at ``"discharge"`` with ``note_time="charttime"``
  the summary counts as available (the prediction is made when the summary is written); with
  ``note_time="storetime"`` no discharge summary is available at discharge. A summary never
  counts before its admission's ``dischtime`` (its day-resolution ``charttime`` can fall before
  the moment it is written): with ``"admission+<H>h"`` only summaries of stays that ended
  before the prediction time remain.

Modules: this one builds the cohort and the label; :mod:`amc.features.mimic_io` holds the file
names and checked readers, :mod:`amc.features.mimic_labs`, :mod:`amc.features.mimic_codes` and
:mod:`amc.features.mimic_notes` the three modalities (all re-exported here).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.mimic_codes import (
    DEATH_CODE_TOKENS,
    code_bucket,
    code_token,
    extract_code_features,
)
from amc.features.mimic_io import (  # noqa: F401  (the lab modality reads through mimic._read ...)
    ADMISSIONS,
    D_LABITEMS,
    DIAGNOSES,
    DISCHARGE,
    LABEVENTS,
    NOTE_FILES,
    PATIENTS,
    PROCEDURES,
    RADIOLOGY,
    _check_columns,
    _hadm_set,
    _path,
    _read,
    _read_chunks,
    _to_time,
)
from amc.features.mimic_labs import (  # the lab modality lives there
    LAB_STATS,
    extract_lab_features,
    lab_feature_names,
)
from amc.features.mimic_notes import extract_note_features, extract_note_texts

logger = logging.getLogger(__name__)

__all__ = [
    "ADMISSIONS",
    "DEATH_CODE_TOKENS",
    "DEATH_POLICIES",
    "DIAGNOSES",
    "DISCHARGE",
    "D_LABITEMS",
    "INDEX_COLUMNS",
    "LABEVENTS",
    "LAB_STATS",
    "NOTE_FILES",
    "PATIENTS",
    "PROCEDURES",
    "RADIOLOGY",
    "code_bucket",
    "code_token",
    "extract_code_features",
    "extract_lab_features",
    "extract_note_features",
    "extract_note_texts",
    "lab_feature_names",
    "label_table",
    "load_index_admissions",
    "parse_prediction_time",
]

DEATH_POLICIES = ("exclude", "keep")

INDEX_COLUMNS = (
    "patient_id",
    "subject_id",
    "hadm_id",
    "admittime",
    "dischtime",
    "label",
    "death_time",
    "prediction_time",
)


# ------------------------------------------------------------------------------------ reading


# ------------------------------------------------------------------------------------ cohort
_ADMISSION_PLUS = re.compile(r"^admission\s*\+\s*(\d+(?:\.\d+)?)\s*h$")


def parse_prediction_time(spec: str) -> float | None:
    """Hours after ``admittime`` of a prediction-time spec; ``None`` for ``"discharge"``.

    ``"discharge"`` -> ``None`` (the index admission's ``dischtime``); ``"admission+48h"`` -> 48.0.
    """
    text = str(spec).strip().lower()
    if text == "discharge":
        return None
    match = _ADMISSION_PLUS.match(text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(
            f"sources.mimic.prediction_time={spec!r} is not a prediction time",
            hint="use 'discharge' or 'admission+<hours>h', e.g. 'admission+48h'",
        )
    return float(match.group(1))


def _integer_ids(values: pd.Series, path: Path | str, column: str) -> pd.Series:
    """``values`` as int64; a missing or non-integer id raises naming the file and the value."""
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() | (num != np.floor(num))
    if bad.any():
        raise InputError(
            f"{path}: column {column!r} has non-integer value {values[bad].iloc[0]!r} "
            f"({int(bad.sum())} row(s))",
            hint=f"MIMIC-IV {column} values are integers; check the file was not edited",
        )
    return num.astype("int64")


def _read_admissions(raw_dir: Path) -> pd.DataFrame:
    adm = _read(
        raw_dir,
        ADMISSIONS,
        ["subject_id", "hadm_id", "admittime", "dischtime", "deathtime"],
        dtype={"deathtime": str, "subject_id": str, "hadm_id": str},
    )
    path_a = raw_dir / ADMISSIONS
    if adm.empty:
        raise InputError(
            f"{path_a}: the admissions table has no rows",
            hint="the cohort is built from admissions; check the download is complete",
        )
    for col in ("admittime", "dischtime", "deathtime"):
        adm[col] = _to_time(adm[col], str(path_a), col)
    if adm["admittime"].isna().any() or adm["hadm_id"].isna().any():
        raise InputError(
            f"{path_a}: empty admittime or hadm_id",
            hint="every admission needs hadm_id and admittime",
        )
    adm["subject_id"] = _integer_ids(adm["subject_id"], path_a, "subject_id")
    adm["hadm_id"] = _integer_ids(adm["hadm_id"], path_a, "hadm_id")
    return adm


def _prediction_times(index: pd.DataFrame, hours: float | None) -> pd.Series:
    if hours is None:
        return index["dischtime"].fillna(index["admittime"])
    return index["admittime"] + pd.Timedelta(hours=hours)


def load_index_admissions(
    raw_dir: Path,
    prediction_time: str = "discharge",
    deaths_before_prediction: str = "exclude",
) -> pd.DataFrame:
    """Index admission (first by admittime) and 1-year mortality label of every patient.

    Parameters
    ----------
    raw_dir:
        MIMIC-IV root (contains ``hosp/``).
    prediction_time:
        ``"discharge"`` or ``"admission+<H>h"`` (module docstring); every feature is restricted
        to what is charted before it.
    deaths_before_prediction:
        ``"exclude"`` (default) drops patients who died at or before the prediction time;
        ``"keep"`` keeps them (label 1) and logs a warning: their notes and codes may state the
        death.

    Returns
    -------
    pd.DataFrame
        (P rows) ``patient_id`` (str subject_id), ``subject_id``, ``hadm_id`` (int64),
        ``admittime``, ``dischtime`` (datetime64), ``label`` (int 0/1), ``death_time``
        (datetime64, NaT when no death is recorded), ``prediction_time`` (datetime64), sorted
        by ``subject_id``.
    """
    hours = parse_prediction_time(prediction_time)
    if deaths_before_prediction not in DEATH_POLICIES:
        raise InputError(
            f"sources.mimic.deaths_before_prediction={deaths_before_prediction!r}",
            hint=f"one of {', '.join(DEATH_POLICIES)}",
        )
    raw_dir = Path(raw_dir)
    adm = _read_admissions(raw_dir)
    pat = _read(raw_dir, PATIENTS, ["subject_id", "dod"], dtype={"dod": str, "subject_id": str})
    pat["subject_id"] = _integer_ids(pat["subject_id"], raw_dir / PATIENTS, "subject_id")
    pat["dod"] = _to_time(pat["dod"], str(raw_dir / PATIENTS), "dod")
    if pat["subject_id"].duplicated().any():
        dup = pat.loc[pat["subject_id"].duplicated(), "subject_id"].iloc[0]
        raise InputError(f"{raw_dir / PATIENTS}: duplicate subject_id {dup}")

    adm = adm.sort_values(["subject_id", "admittime", "hadm_id"], kind="stable")
    index = adm.drop_duplicates("subject_id", keep="first").copy()
    first_death = adm.groupby("subject_id")["deathtime"].min()
    index["deathtime_any"] = index["subject_id"].map(first_death)
    index = index.merge(pat, on="subject_id", how="left")
    no_patient = index["dod"].isna() & ~index["subject_id"].isin(pat["subject_id"])
    if no_patient.any():
        logger.warning(
            "%d admissions' subject_id not in patients.csv.gz (dod unknown)", int(no_patient.sum())
        )
    death, label, before = _death_and_label(index)
    out = pd.DataFrame(
        {
            "patient_id": index["subject_id"].astype("int64").astype(str),
            "subject_id": index["subject_id"].astype("int64"),
            "hadm_id": index["hadm_id"].astype("int64"),
            "admittime": index["admittime"],
            "dischtime": index["dischtime"],
            "label": label.to_numpy(),
            "death_time": death,
            "prediction_time": _prediction_times(index, hours),
        }
    ).reset_index(drop=True)
    out = _apply_death_policy(out, before.to_numpy(), deaths_before_prediction, prediction_time)
    logger.info(
        "MIMIC-IV cohort: %d patients (index = first admission, prediction time %s), "
        "%d positive (%.1f%%)",
        len(out),
        prediction_time,
        int(out["label"].sum()),
        100 * out["label"].mean() if len(out) else 0,
    )
    return out


def _death_and_label(index: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Death time (earliest of deathtime and dod), 1-year label, and 'death before admission'."""
    death = pd.concat([index["deathtime_any"], index["dod"]], axis=1).min(axis=1)
    delta = death - index["admittime"]
    before = death < index["admittime"].dt.normalize()
    if before.any():
        logger.warning(
            "%d patients have a death time before their index admission's date; labelled 0",
            int(before.sum()),
        )
    label = (death.notna() & ~before & (delta <= pd.Timedelta(days=365))).astype(int)
    return death, label, before


def _apply_death_policy(
    index: pd.DataFrame, inconsistent: np.ndarray, policy: str, spec: str
) -> pd.DataFrame:
    """Drop (or keep, loudly) the patients who died at or before the prediction time."""
    dead = (index["death_time"] <= index["prediction_time"]).to_numpy() & ~inconsistent
    n_dead = int(dead.sum())
    if n_dead and policy == "keep":
        logger.warning(
            "%d patients died at or before the prediction time (%s) and are KEPT with label 1 "
            "(deaths_before_prediction=keep): their notes and codes may state the death",
            n_dead,
            spec,
        )
        return index
    if n_dead:
        logger.info(
            "%d patients died at or before the prediction time (%s): excluded "
            "(deaths_before_prediction=exclude)",
            n_dead,
            spec,
        )
    out = index.loc[~dead].reset_index(drop=True)
    if out.empty:
        raise InputError(
            f"no patient is alive at the prediction time {spec!r}",
            hint="check admissions.deathtime / patients.dod, or use an earlier prediction time",
        )
    return out


def label_table(index: pd.DataFrame) -> pd.DataFrame:
    """``patient_id`` (str), ``label`` (int 0/1) from :func:`load_index_admissions`."""
    return pd.DataFrame(
        {
            "patient_id": index["patient_id"].astype(str).to_numpy(),
            "label": index["label"].astype(int).to_numpy(),
        }
    )
