"""MIMIC-IV file names and checked readers (whole tables, chunks, times) shared by the
cohort, code, note and lab extractors of :mod:`amc.features.mimic`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from amc.errors import InputError

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
