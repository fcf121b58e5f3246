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
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.mimic_labs import (  # noqa: F401  (the lab modality lives there)
    LAB_STATS,
    extract_lab_features,
    lab_feature_names,
)

logger = logging.getLogger(__name__)

PATIENTS = "hosp/patients.csv.gz"
ADMISSIONS = "hosp/admissions.csv.gz"
LABEVENTS = "hosp/labevents.csv.gz"
D_LABITEMS = "hosp/d_labitems.csv.gz"
DIAGNOSES = "hosp/diagnoses_icd.csv.gz"
PROCEDURES = "hosp/procedures_icd.csv.gz"
DISCHARGE = "note/discharge.csv.gz"
RADIOLOGY = "note/radiology.csv.gz"
#: note_type -> the MIMIC-IV-Note file that holds it.
NOTE_FILES = {"DS": DISCHARGE, "RR": RADIOLOGY, "AR": RADIOLOGY}
#: ICD categories that state a death (ICD-9 798 sudden death / unknown cause; ICD-10 R96 other
#: sudden death, R98 unattended death, R99 ill-defined and unknown cause of mortality).
DEATH_CODE_TOKENS = ("dx9:798", "dx10:R96", "dx10:R98", "dx10:R99")
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
def _path(raw_dir: Path, rel: str) -> Path:
    path = Path(raw_dir) / rel
    if not path.is_file():
        raise InputError(
            f"{path}: MIMIC-IV file not found",
            hint=f"point the raw path at a MIMIC-IV folder that contains {rel} "
            "(or run the synthesize stage)",
        )
    return path


def _check_columns(path: Path, required: Sequence[str]) -> None:
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: unreadable CSV ({err})", hint="re-download the file") from err
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)}",
            hint=f"expected the MIMIC-IV columns {', '.join(required)}",
        )


def _read(raw_dir: Path, rel: str, columns: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    path = _path(raw_dir, rel)
    _check_columns(path, columns)
    try:
        return pd.read_csv(path, usecols=list(columns), **kwargs)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: could not be parsed ({err})") from err


def _read_chunks(
    raw_dir: Path, rel: str, columns: Sequence[str], chunksize: int, **kwargs: Any
) -> Iterator[pd.DataFrame]:
    path = _path(raw_dir, rel)
    _check_columns(path, columns)
    try:
        with pd.read_csv(path, usecols=list(columns), chunksize=chunksize, **kwargs) as reader:
            yield from reader
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: could not be parsed ({err})") from err


def _to_time(values: pd.Series, path: str, column: str) -> pd.Series:
    out = pd.to_datetime(values, errors="coerce")
    bad = out.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        raise InputError(
            f"{path}: column {column!r} has unparseable time {values[bad].iloc[0]!r}",
            hint="times must look like 2180-05-06 22:23:00",
        )
    return out


def _hadm_set(index: pd.DataFrame) -> dict[int, int]:
    """hadm_id -> row position in ``index``."""
    if "hadm_id" not in index or "patient_id" not in index:
        raise InputError(
            "index table needs columns patient_id and hadm_id",
            hint="build it with load_index_admissions(raw_dir)",
        )
    return {int(h): i for i, h in enumerate(index["hadm_id"].to_numpy())}


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


# ------------------------------------------------------------------------------------ codes
def _codes_known(index: pd.DataFrame) -> np.ndarray:
    """(P,) bool: the index admission is discharged (codes assigned) by the prediction time."""
    if "prediction_time" not in index:
        return np.ones(len(index), dtype=bool)
    disch = pd.to_datetime(index["dischtime"])
    return (disch.notna() & (disch <= pd.to_datetime(index["prediction_time"]))).to_numpy()


def code_token(kind: str, version: int, code: str) -> str:
    """The vocabulary token of one ICD code: ``f"{kind}{version}:{code[:3]}"``."""
    return f"{kind}{int(version)}:{str(code).strip().upper().replace('.', '')[:3]}"


def code_bucket(token: str, vocab_size: int) -> int:
    """Stable bucket of a token: ``zlib.crc32(token) % vocab_size``."""
    return zlib.crc32(token.encode("utf-8")) % vocab_size


def _tokens(kind: str, version: pd.Series, icd_code: pd.Series) -> pd.Series:
    """Vectorised :func:`code_token`."""
    code = icd_code.astype(str).str.strip().str.upper().str.replace(".", "", regex=False).str[:3]
    return kind + version.astype(int).astype(str) + ":" + code


def _buckets(tokens: pd.Series, vocab_size: int, cache: dict[str, int]) -> np.ndarray:
    """Bucket of every token (each distinct token hashed once, remembered in ``cache``)."""
    uniq, inverse = np.unique(tokens.to_numpy(dtype=str), return_inverse=True)
    buckets = np.empty(len(uniq), dtype=np.int64)
    for k, token in enumerate(uniq):
        b = cache.get(token)
        if b is None:
            b = cache[token] = code_bucket(token, vocab_size)
        buckets[k] = b
    return buckets[inverse.ravel()]


def extract_code_features(
    raw_dir: Path,
    index: pd.DataFrame,
    vocab_size: int = 512,
    chunksize: int = 1_000_000,
    exclude: Sequence[str] = DEATH_CODE_TOKENS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multi-hot ICD-9/ICD-10 diagnoses and procedures of the index admission (hashed vocab).

    Parameters
    ----------
    raw_dir:
        MIMIC-IV root.
    index:
        :func:`load_index_admissions` output (P rows).
    vocab_size:
        Number of hash buckets (fixed vocabulary, independent of the cohort).
    chunksize:
        Rows per chunk when reading the ICD tables.
    exclude:
        Tokens (``dx10:R99`` ...) never used: ICD categories that state the death.

    Returns
    -------
    ids : (P,) patient ids in ``index`` order.
    feats : (P, vocab_size) float32 in {0, 1}; admissions without codes are zero rows.
    names : ``code_bucket_000`` ... (a bucket holds every ICD category hashed to it).
    """
    if vocab_size < 1:
        raise InputError(f"vocab_size={vocab_size} must be >= 1")
    raw_dir = Path(raw_dir)
    pos = _hadm_set(index)
    known = _codes_known(index)
    hadm_arr = index["hadm_id"].astype("int64").to_numpy()[known]
    excluded = {str(t).strip().upper() for t in exclude}
    feats = np.zeros((len(index), vocab_size), dtype=np.float32)
    bucket_cache: dict[str, int] = {}
    counts = {"excluded": 0}
    for rel, kind in ((DIAGNOSES, "dx"), (PROCEDURES, "px")):
        n_used = 0
        bad_version = 0
        cols = ["hadm_id", "icd_code", "icd_version"]
        for chunk in _read_chunks(
            raw_dir, rel, cols, chunksize, dtype={"icd_code": str, "hadm_id": "float64"}
        ):
            chunk = chunk[chunk["hadm_id"].isin(hadm_arr) & chunk["icd_code"].notna()]
            version = pd.to_numeric(chunk["icd_version"], errors="coerce")
            ok = version.isin([9, 10])
            bad_version += int((~ok).sum())
            chunk = chunk[ok]
            rows = chunk["hadm_id"].astype("int64").map(pos).to_numpy()
            tokens = _tokens(kind, version[ok], chunk["icd_code"])
            drop = tokens.str.upper().isin(excluded).to_numpy()
            counts["excluded"] += int(drop.sum())
            rows, tokens = rows[~drop], tokens[~drop]
            feats[rows, _buckets(tokens, vocab_size, bucket_cache)] = 1.0
            n_used += len(rows)
        if bad_version:
            logger.warning(
                "%s: %d rows with icd_version not 9/10 ignored", raw_dir / rel, bad_version
            )
        counts[kind] = n_used
    no_codes = int((feats.sum(axis=1) == 0).sum())
    logger.info(
        "ICD codes: %d diagnoses and %d procedures of index admissions -> %d distinct "
        "categories in %d buckets; %d of %d admissions without codes (%d not yet "
        "discharged at the prediction time); %d death-stating codes dropped (%s)",
        counts["dx"],
        counts["px"],
        len(bucket_cache),
        vocab_size,
        no_codes,
        len(index),
        int((~known).sum()),
        counts["excluded"],
        ", ".join(sorted(excluded)) or "none",
    )
    names = [f"code_bucket_{k:0{len(str(vocab_size - 1))}d}" for k in range(vocab_size)]
    return index["patient_id"].astype(str).to_numpy(dtype=object), feats, names


# ------------------------------------------------------------------------------------ notes
def _read_notes(
    raw_dir: Path, rel: str, hadm_arr: np.ndarray, note_time: str, chunksize: int
) -> pd.DataFrame:
    cols = ["hadm_id", "note_type", "note_seq", note_time, "text"]
    parts = []
    for chunk in _read_chunks(
        raw_dir,
        rel,
        cols,
        chunksize,
        dtype={"text": str, "hadm_id": "float64", "note_type": str, note_time: str},
        keep_default_na=False,
        na_values={"hadm_id": [""], "note_seq": [""]},
    ):
        parts.append(chunk[chunk["hadm_id"].isin(hadm_arr)])
    notes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    notes["time"] = _to_time(notes.pop(note_time).replace("", None), str(raw_dir / rel), note_time)
    return notes


def extract_note_texts(
    raw_dir: Path,
    index: pd.DataFrame,
    chunksize: int = 100_000,
    note_types: Sequence[str] = ("DS",),
    note_time: str = "charttime",
) -> pd.Series:
    """Text of each patient's index-admission notes charted at or before the prediction time.

    Notes of the listed ``note_types`` (``DS`` discharge summaries in ``note/discharge.csv.gz``,
    ``RR`` / ``AR`` radiology reports and addenda in ``note/radiology.csv.gz``) whose
    ``note_time`` column (``charttime`` or ``storetime``) is at or before the index table's
    ``prediction_time`` (all notes when it has no such column; a note without a time is not
    used; a discharge summary, dated on the discharge day, counts from the admission's
    ``dischtime`` at the earliest) are joined in (type, ``note_seq``) order with a blank line.
    Patients without a note, or with only empty notes, are omitted (a missing modality) and
    counted.

    Returns
    -------
    pd.Series
        ``patient_id`` -> text (str), in ``index`` order, name ``text``.
    """
    raw_dir = Path(raw_dir)
    if note_time not in ("charttime", "storetime"):
        raise InputError(
            f"sources.mimic.note_time={note_time!r}", hint="one of charttime, storetime"
        )
    unknown = [t for t in note_types if t not in NOTE_FILES]
    if unknown or not note_types:
        raise InputError(
            f"sources.mimic.note_types={list(note_types)!r}: unknown or empty",
            hint=f"a non-empty list of {', '.join(NOTE_FILES)}",
        )
    _hadm_set(index)
    hadm_arr = index["hadm_id"].astype("int64").to_numpy()
    files = list(dict.fromkeys(NOTE_FILES[t] for t in note_types))
    notes = pd.concat(
        [_read_notes(raw_dir, rel, hadm_arr, note_time, chunksize) for rel in files],
        ignore_index=True,
    )
    notes = notes[notes["note_type"].isin(list(note_types))]
    notes = notes[notes["text"].astype(str).str.strip() != ""]
    notes = notes.assign(
        hadm_id=notes["hadm_id"].astype("int64"),
        note_seq=pd.to_numeric(notes["note_seq"], errors="coerce"),
    )
    n_all = len(notes)
    if "prediction_time" in index:
        by_hadm = index.assign(hadm_id=hadm_arr).set_index("hadm_id")
        limit = pd.to_datetime(by_hadm["prediction_time"]).reindex(notes["hadm_id"]).to_numpy()
        # a discharge summary is dated on the discharge DAY but written at discharge: it is
        # never available before the admission's dischtime
        disch = pd.to_datetime(by_hadm["dischtime"]).reindex(notes["hadm_id"]).to_numpy()
        known = notes["time"].to_numpy()
        is_ds = (notes["note_type"] == "DS").to_numpy()
        known = np.where(is_ds, np.maximum(known, disch), known)
        notes = notes[known <= limit]
    notes = notes.sort_values(["hadm_id", "note_type", "note_seq"], kind="stable")
    joined = notes.groupby("hadm_id", sort=False)["text"].agg(lambda s: "\n\n".join(s))
    hadm = index["hadm_id"].astype("int64")
    has = hadm.isin(joined.index).to_numpy()
    out = pd.Series(
        joined.reindex(hadm[has].to_numpy()).to_numpy(),
        index=pd.Index(index["patient_id"].astype(str).to_numpy()[has], name="patient_id"),
        name="text",
        dtype=object,
    )
    logger.info(
        "notes (%s, by %s): %d of %d index admissions have one; %d without (absent from note "
        "features); %d notes charted after the prediction time (or undated) not used",
        ",".join(note_types),
        note_time,
        len(out),
        len(index),
        int((~has).sum()),
        n_all - len(notes),
    )
    return out


def extract_note_features(
    raw_dir: Path,
    index: pd.DataFrame,
    model_path: str | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    stride: int = 32,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Note embeddings of the patients that have a discharge note (others are absent).

    Returns
    -------
    ids : (P_note,) patient ids with a note.
    feats : (P_note, H) float32 from :func:`amc.features.text.embed_texts`.
    names : ``note_emb_000`` ... (H names).
    """
    from amc.features.text import embed_texts

    texts = extract_note_texts(raw_dir, index)
    feats = embed_texts(
        texts.tolist(),
        model_path=model_path,
        batch_size=batch_size,
        max_length=max_length,
        stride=stride,
        device=device,
    )
    names = [f"note_emb_{k:03d}" for k in range(feats.shape[1])]
    return texts.index.to_numpy(dtype=object), feats, names
