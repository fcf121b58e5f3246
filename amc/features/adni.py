"""ADNI feature extraction: diagnosis labels, MRI volumes, biospecimen, clinical, genotypes.

Reads what an ADNI download ships (study-data CSVs keyed by ``PTID`` / ``RID``, NIfTI volumes,
a PLINK ``--recode A`` ``.raw`` file); the synthetic cohort of :mod:`amc.synthetic.adni` uses the
same layout. Every extractor returns one row per subject (``patient_id`` = PTID, e.g.
``011_S_0002``); a subject without data for a modality is *absent* from that modality (a missing
modality, counted in the log), never a row of zeros. Extraction is unsupervised and per subject:
nothing is fitted across subjects (scaling, imputation and selection happen on the training split
inside training).

This module holds the diagnosis labels, the genotypes and the writer, and re-exports the other
modalities: tables and the visit rule in :mod:`amc.features.adni_tables`, biospecimens in
:mod:`amc.features.adni_biospecimen`, clinical data in :mod:`amc.features.adni_clinical`, MRI in
:mod:`amc.features.adni_mri`.

Visit rule (shared by the diagnosis and the tabular modalities)
    ``visit="bl"`` (default): the baseline row (``VISCODE2``, else ``VISCODE``, equal to ``bl``);
    if the subject has none (or, for diagnosis, its baseline has no diagnosis), the screening
    row (``sc`` / ``scmri``); else the earliest usable visit by month (``m06`` = 6, ADNI3 ``y1``
    = 12) then ``EXAMDATE``. ``"first"``: earliest usable visit; ``"last"``: latest usable visit;
    any other string: exactly that visit code, no fallback. Visits with an unknown code
    (``uns1``, ...) are used only when no visit with a known month qualifies.

Numeric parsing
    Values outside an assay's measuring range are written by ADNI as ``<200`` or ``>1700``: the
    comparison sign is stripped and the bound is used as the value (the censored value is the
    closest number we know; document-level choice). ADNI's missing code ``-4`` becomes NaN
    (``-1`` is not treated as missing, since some scores can legitimately be negative). Anything
    else that is not a number is missing.

Missing values in a present modality
    Filled with 0, plus one indicator column ``<feature>_missing`` (1 = was missing) per feature,
    so the model can tell "0" from "not measured"; scaling is left to training.

Leakage
    Diagnosis-derived columns (``DX``, ``DX_bl``, ``DXCHANGE``, ``DIAGNOSIS``, ``DXCURREN`` and any
    other column whose name starts with ``DX``) are never used as features; asking for one raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from amc.data.store import write_features
from amc.errors import InputError
from amc.features.adni_biospecimen import extract_biospecimen
from amc.features.adni_clinical import (
    CATEGORY_LEVELS,
    DEFAULT_CLINICAL_CATEGORICAL,
    DEFAULT_CLINICAL_NUMERIC,
    DIAGNOSTIC_INSTRUMENTS,
    extract_clinical,
    is_diagnostic_instrument,
)
from amc.features.adni_mri import (  # the MRI modality lives there
    extract_mri_features,
    find_mri_files,
    load_mri_volume,
)
from amc.features.adni_tables import (
    _read_csv,
    _select_visit,
    is_diagnosis_column,
    parse_numeric,
    parse_numeric_column,
    visit_month,
)
from amc.features.plink import read_plink, read_plink_header, read_plink_raw

logger = logging.getLogger(__name__)

__all__ = [
    "CATEGORY_LEVELS",
    "CLASS_NAMES",
    "DEFAULT_CLINICAL_CATEGORICAL",
    "DEFAULT_CLINICAL_NUMERIC",
    "DIAGNOSTIC_INSTRUMENTS",
    "extract_biospecimen",
    "extract_clinical",
    "extract_genomic",
    "extract_mri_features",
    "find_mri_files",
    "is_diagnosis_column",
    "is_diagnostic_instrument",
    "load_diagnosis",
    "load_mri_volume",
    "parse_numeric",
    "parse_numeric_column",
    "read_plink_header",
    "read_plink_raw",
    "visit_month",
    "write_modality",
]

CLASS_NAMES = ("CN", "MCI", "AD")
_DIAGNOSIS = {1: "CN", 2: "MCI", 3: "AD"}
# ADNIGO/2 DXCHANGE: 1-3 stable NL/MCI/AD, 4 NL->MCI, 5 MCI->AD, 6 NL->AD, 7 MCI->NL, 8 AD->MCI,
# 9 AD->NL; the label is the state at this visit.
_DXCHANGE = {1: "CN", 2: "MCI", 3: "AD", 4: "MCI", 5: "AD", 6: "AD", 7: "CN", 8: "MCI", 9: "CN"}
_DXCURREN = {1: "CN", 2: "MCI", 3: "AD"}  # ADNI1


def _dx_label(df: pd.DataFrame) -> pd.Series:
    """CN / MCI / AD per row from DIAGNOSIS, else DXCHANGE (ADNIGO/2), else DXCURREN (ADNI1)."""
    label = pd.Series(pd.NA, index=df.index, dtype="string")
    for col, mapping in (
        ("DIAGNOSIS", _DIAGNOSIS),
        ("DXCHANGE", _DXCHANGE),
        ("DXCURREN", _DXCURREN),
    ):
        if col not in df.columns:
            continue
        vals = parse_numeric(df[col])
        mapped = pd.Series(
            [
                mapping.get(int(v)) if np.isfinite(v) and float(v).is_integer() else None
                for v in vals
            ],
            index=df.index,
            dtype="string",
        )
        label = label.fillna(mapped)
    return label


def load_diagnosis(dxsum_csv: str | os.PathLike, visit: str = "bl") -> pd.DataFrame:
    """Diagnosis labels from a DXSUM-style table (``DXSUM_PDXCONV.csv``).

    Parameters
    ----------
    dxsum_csv
        CSV with ``PTID``, ``VISCODE`` (and optionally ``VISCODE2``, ``EXAMDATE``) and
        ``DIAGNOSIS`` (1 = CN, 2 = MCI, 3 = AD). Where ``DIAGNOSIS`` is blank, ADNIGO/2's
        ``DXCHANGE`` (1/7/9 CN, 2/4/8 MCI, 3/5/6 AD) or ADNI1's ``DXCURREN`` is used.
    visit
        ``"bl"`` (default; falls back to screening, then the earliest visit with a diagnosis),
        ``"first"``, ``"last"`` or an exact visit code (see the module docstring).

    Returns
    -------
    pd.DataFrame
        Columns ``patient_id`` (PTID) and ``label`` in {"CN", "MCI", "AD"}, one row per subject
        with a diagnosis at the chosen visit, sorted by ``patient_id``. Subjects without one
        are left out (counted in the log). Conflicting diagnoses at the same visit: the last
        row in file order wins (later entries correct earlier ones), with a warning.
    """
    has_dx = ["DIAGNOSIS", "DXCHANGE", "DXCURREN"]
    df = _read_csv(dxsum_csv, required=["PTID", "VISCODE"])
    if not any(c in df.columns for c in has_dx):
        raise InputError(f"{dxsum_csv}: no diagnosis column", hint=f"expected one of {has_dx}")
    df["PTID"] = df["PTID"].astype("string").str.strip()
    df = df[df["PTID"].notna() & (df["PTID"] != "")]
    df["_label"] = _dx_label(df)
    all_ids = set(df["PTID"])
    chosen = _select_visit(df, "PTID", df["_label"].notna(), visit)
    n_conflict = int((chosen.groupby("PTID")["_label"].nunique() > 1).sum())
    if n_conflict:
        logger.warning(
            "%s: %d subjects with conflicting diagnoses at the chosen visit; last row used",
            dxsum_csv,
            n_conflict,
        )
    chosen = chosen.groupby("PTID", sort=True).tail(1).sort_values("PTID", kind="stable")
    out = pd.DataFrame(
        {"patient_id": chosen["PTID"].astype(str).to_numpy(), "label": chosen["_label"].astype(str)}
    ).reset_index(drop=True)
    n_missing = len(all_ids) - len(out)
    counts = out["label"].value_counts().reindex(CLASS_NAMES, fill_value=0).to_dict()
    logger.info(
        "%s: %d labelled subjects %s (visit=%s); %d without a diagnosis left out",
        dxsum_csv,
        len(out),
        counts,
        visit,
        n_missing,
    )
    return out


def extract_genomic(
    raw_path: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    variants: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Genotype dosages from PLINK (``.bed`` fileset or ``.raw``), NaN-free, plus a missing rate.

    Missing calls (``NA``) become dosage 0 and the last column ``missing_rate`` holds each
    subject's fraction of missing calls. Why 0: PLINK 1.9 ``--recode A`` counts the minor allele
    by default, so 0 is the most common genotype at almost every variant (mode imputation that
    needs no statistics); an imputation by allele frequency would have to be fitted, which must
    happen on the training split only. The missing rate lets the model discount
    poorly genotyped subjects. The array is filled in place (no second ``(P, V)`` copy).

    Returns
    -------
    ids : np.ndarray
        (P,) IIDs (PTIDs), in file order (restricted to ``patient_ids`` when given; not
        reordered, which would copy the array).
    feats : np.ndarray
        (P, V + 1) float32: V dosages then ``missing_rate``.
    feature_names : list of str
        (V + 1,) variant names then ``"missing_rate"``.
    """
    ids, dos, names = read_plink(
        raw_path, patient_ids=patient_ids, variants=variants, pad_columns=1
    )
    n_var = len(names)
    for i in range(dos.shape[0]):
        row = dos[i, :n_var]
        miss = np.isnan(row)
        dos[i, n_var] = miss.mean() if n_var else 0.0
        row[miss] = 0.0
    rates = dos[:, n_var] if len(ids) else np.zeros(0)
    logger.info(
        "%s: genomic %d subjects x %d variants; missing-call rate mean %.4f, max %.4f",
        raw_path,
        len(ids),
        n_var,
        float(rates.mean()) if len(ids) else 0.0,
        float(rates.max()) if len(ids) else 0.0,
    )
    return ids, dos, [*names, "missing_rate"]


def write_modality(
    path: str | os.PathLike,
    ids: Sequence[str] | np.ndarray,
    feats: np.ndarray,
    *,
    extractor: str,
    params: Mapping[str, Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> None:
    """Write an ADNI feature table with :func:`amc.data.store.write_features` (atomic).

    Metadata: ``extractor``, ``params``, ``feature_names`` (when given) and, for volumes,
    ``shape`` (added by the store).
    """
    meta: dict[str, Any] = {"extractor": extractor, "params": dict(params or {}), "source": "adni"}
    if feature_names is not None:
        meta["feature_names"] = list(feature_names)
    write_features(path, list(ids), feats, metadata=meta)
