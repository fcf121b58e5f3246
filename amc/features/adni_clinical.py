"""ADNI clinical features from ADNIMERGE: demographics, and on request the cognitive and
functional instruments the diagnosis is made from."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.adni_tables import (
    _assemble,
    _read_csv,
    _select_visit,
    is_diagnosis_column,
    parse_numeric_column,
)

logger = logging.getLogger("amc.features.adni")

DEFAULT_CLINICAL_NUMERIC = ("AGE", "PTEDUCAT")
#: ADNIMERGE's cognitive and functional instruments: the CN / MCI / AD diagnosis is made largely
#: from them (MMSE, CDR-SB, logical memory and FAQ are inclusion criteria), so they are not
#: features by default (``include_instruments=True`` adds them, with a warning).
DIAGNOSTIC_INSTRUMENTS = (
    "MMSE",
    "CDRSB",
    "ADAS11",
    "ADAS13",
    "FAQ",
    "MOCA",
    "RAVLT_immediate",
)
_INSTRUMENT_PREFIXES = (
    "MMSE", "CDR", "ADAS", "FAQ", "MOCA", "RAVLT", "LDELTOTAL", "DIGITSCOR", "TRABSCOR",
    "MPACC", "ECOG", "NPI", "GDS",
)  # fmt: skip


def is_diagnostic_instrument(name: str) -> bool:
    """True for cognitive / functional test scores (MMSE, CDR-SB, ADAS-Cog, FAQ, MoCA, ...)."""
    return str(name).strip().upper().startswith(_INSTRUMENT_PREFIXES)


DEFAULT_CLINICAL_CATEGORICAL = ("PTGENDER", "PTETHCAT", "PTRACCAT", "PTMARRY")
#: Fixed one-hot vocabularies of ADNIMERGE's categorical columns (so the encoding does not depend
#: on which subjects are in the file). Other categorical columns use their sorted observed levels.
CATEGORY_LEVELS: dict[str, tuple[str, ...]] = {
    "PTGENDER": ("Male", "Female"),
    "PTETHCAT": ("Hisp/Latino", "Not Hisp/Latino", "Unknown"),
    "PTRACCAT": (
        "White",
        "Black",
        "Asian",
        "Am Indian/Alaskan",
        "Hawaiian/Other PI",
        "More than one",
        "Unknown",
    ),
    "PTMARRY": ("Married", "Widowed", "Divorced", "Never married", "Unknown"),
}


def _check_clinical_columns(requested: Sequence[str], include_instruments: bool) -> None:
    leaky = [c for c in requested if is_diagnosis_column(c)]
    if leaky:
        raise InputError(
            f"clinical columns {leaky} are diagnosis-derived",
            hint="they would leak the label into the features; remove them from the column list",
        )
    instruments = [c for c in requested if is_diagnostic_instrument(c)]
    if instruments and not include_instruments:
        raise InputError(
            f"clinical columns {instruments} are diagnostic instruments (the CN / MCI / AD "
            "diagnosis is made from them)",
            hint="remove them, or set sources.adni.clinical_instruments: true to use them anyway",
        )
    if instruments:
        logger.warning(
            "clinical features include the diagnostic instruments %s "
            "(sources.adni.clinical_instruments: true): they nearly define the diagnosis, so "
            "accuracy is NOT comparable with a model that excludes them",
            instruments,
        )


def _add_one_hot(block: pd.DataFrame, values: pd.Series, column: str, path: Any) -> None:
    """Add the ``<column>=<level>`` one-hot columns of ``values`` to ``block`` (in place).

    Levels: the fixed ADNI vocabulary of ``column`` (:data:`CATEGORY_LEVELS`), else the sorted
    observed levels; a blank or out-of-vocabulary value is missing (NaN) in every level column.
    """
    raw = values.astype("string").str.strip()
    levels = CATEGORY_LEVELS.get(column) or tuple(sorted(set(raw.dropna()) - {""}))
    known = raw.isin(levels).fillna(False).to_numpy(dtype=bool)
    n_unknown = int((raw.notna() & (raw != "") & ~known).sum())
    if n_unknown:
        logger.warning(
            "%s: %d values of %s outside %s treated as missing", path, n_unknown, column, levels
        )
    for lev in levels:
        block[f"{column}={lev}"] = np.where(known, (raw == lev).fillna(False).astype(float), np.nan)


def extract_clinical(
    adnimerge_csv: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    visit: str = "bl",
    numeric_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] = DEFAULT_CLINICAL_CATEGORICAL,
    include_instruments: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Clinical features (demographics; cognitive scores on request) from ADNIMERGE.

    Parameters
    ----------
    adnimerge_csv
        Table with ``PTID``, ``VISCODE`` and the requested columns.
    patient_ids
        Keep only these subjects (in this order); ``None``: all, sorted.
    visit
        Visit rule (see :mod:`amc.features.adni`); default baseline.
    numeric_columns
        Parsed as numbers (``<`` / ``>`` stripped, ``-4`` missing). ``None``:
        :data:`DEFAULT_CLINICAL_NUMERIC`, plus :data:`DIAGNOSTIC_INSTRUMENTS` when
        ``include_instruments``. A column whose non-blank values are *all* unparseable is an
        error; a partly unparseable column is logged with the count.
    categorical_columns
        One-hot encoded: fixed ADNI vocabularies (``CATEGORY_LEVELS``) for PTGENDER, PTETHCAT,
        PTRACCAT, PTMARRY; sorted observed levels for any other column. A value outside the
        vocabulary or blank counts as missing.
    include_instruments
        Allow the diagnostic instruments (:func:`is_diagnostic_instrument`); they nearly define
        the label, so the default refuses them and ``True`` logs a warning.

    Returns
    -------
    ids : np.ndarray
        (P,) PTIDs with a row at the chosen visit.
    feats : np.ndarray
        (P, 2F) float32: numeric values and one-hot columns (NaN -> 0), then one
        ``<name>_missing`` indicator per output column.
    feature_names : list of str
        (2F,) names; one-hot columns are ``<column>=<level>``.

    Raises
    ------
    InputError
        A requested column is diagnosis-derived (``DX``, ``DX_bl``, ``DXCHANGE``, ...: label
        leakage), a diagnostic instrument without ``include_instruments``, absent from the
        table, or numeric with no parseable value.
    """
    if numeric_columns is None:
        numeric_columns = DEFAULT_CLINICAL_NUMERIC + (
            DIAGNOSTIC_INSTRUMENTS if include_instruments else ()
        )
    requested = list(numeric_columns) + list(categorical_columns)
    _check_clinical_columns(requested, include_instruments)
    df = _read_csv(adnimerge_csv, required=["PTID", "VISCODE", *requested])
    df["_pid"] = df["PTID"].astype("string").str.strip()
    df = df[df["_pid"].notna() & (df["_pid"] != "")]
    chosen = _select_visit(df, "_pid", pd.Series(True, index=df.index), visit)
    chosen = chosen.groupby("_pid", sort=True).tail(1)  # duplicate rows of one visit: last wins
    block = pd.DataFrame(index=pd.Index(chosen["_pid"].astype(str), name=None))
    for c in numeric_columns:
        block[c] = parse_numeric_column(chosen[c], adnimerge_csv, c)
    for c in categorical_columns:
        _add_one_hot(block, chosen[c], c, adnimerge_csv)
    ids, feats, names = _assemble([block], patient_ids)
    logger.info(
        "%s: clinical %d subjects x %d features (visit=%s)",
        adnimerge_csv,
        len(ids),
        feats.shape[1],
        visit,
    )
    return ids, feats, names
