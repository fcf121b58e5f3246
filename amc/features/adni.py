"""ADNI feature extraction: diagnosis labels, MRI volumes, biospecimen, clinical, genotypes.

Reads what an ADNI download ships (study-data CSVs keyed by ``PTID`` / ``RID``, NIfTI volumes,
a PLINK ``--recode A`` ``.raw`` file); the synthetic cohort of :mod:`amc.synthetic.adni` uses the
same layout. Every extractor returns one row per subject (``patient_id`` = PTID, e.g.
``011_S_0002``); a subject without data for a modality is *absent* from that modality (a missing
modality, counted in the log), never a row of zeros. Extraction is unsupervised and per subject:
nothing is fitted across subjects (scaling, imputation and selection happen on the training split
inside training).

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
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amc.data.store import write_features
from amc.errors import InputError
from amc.features.adni_mri import (  # noqa: F401  (the MRI modality lives there)
    extract_mri_features,
    find_mri_files,
    load_mri_volume,
)
from amc.features.plink import read_plink, read_plink_header, read_plink_raw

logger = logging.getLogger(__name__)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_CLINICAL_CATEGORICAL",
    "DEFAULT_CLINICAL_NUMERIC",
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
# Administrative / identifier columns of ADNI biospecimen tables: never features.
_ADMIN_COLUMNS = {
    c.upper()
    for c in (
        "RID", "PTID", "PHASE", "COLPROT", "ORIGPROT", "ID", "SITEID", "SITE", "VISCODE",
        "VISCODE2", "EXAMDATE", "USERDATE", "USERDATE2", "update_stamp", "BATCH", "KIT", "STDS",
        "RUNDATE", "DRWDTE", "COMMENT", "COMMENTS", "NOTE", "NOTES", "APTESTDT", "APVOLUME",
        "APRECEIVE", "APAMBTEMP", "APRESAMP", "APUSABLE", "APGEN1", "APGEN2", "GUSPECID",
        "Month", "M", "Years_bl", "Month_bl",
    )
}  # fmt: skip
_MISSING_CODES = (-4.0,)


def is_diagnosis_column(name: str) -> bool:
    """True for diagnosis-derived ADNI columns (``DX*``, ``DIAGNOSIS``): never features."""
    up = str(name).strip().upper()
    return up.startswith("DX") or up == "DIAGNOSIS"


# --------------------------------------------------------------------------------------------
# CSV helpers
# --------------------------------------------------------------------------------------------
def _read_csv(path: str | os.PathLike, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read an ADNI CSV as strings (blank -> NaN), checking that ``required`` columns exist."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found", hint="check the ADNI raw-data path in params")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}",
            hint=f"expected an ADNI study-data table with columns {list(required)}",
        )
    return df


def parse_numeric(
    values: Iterable[Any], missing_codes: Sequence[float] = _MISSING_CODES
) -> np.ndarray:
    """Parse ADNI numeric text to float64.

    ``"<200"`` -> 200 and ``">1700"`` -> 1700 (out-of-range assay values: the sign is stripped and
    the bound kept), blanks / non-numbers / ``missing_codes`` -> NaN.

    Returns
    -------
    np.ndarray
        (N,) float64.
    """
    s = pd.Series(list(values), dtype=object).astype("string").str.strip()
    s = s.str.replace(r"^[<>]=?\s*", "", regex=True)
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    for code in missing_codes:
        out[out == code] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


def visit_month(code: Any) -> float:
    """Months from baseline of an ADNI visit code (``sc`` -1, ``bl`` 0, ``m06`` 6, ``y2`` 24).

    Unknown codes (``uns1``, ``init``, ...) give NaN and sort after all known visits.
    """
    if not isinstance(code, str):
        return np.nan
    c = code.strip().lower()
    if c in ("sc", "scmri", "f", "v01", "v02"):
        return -1.0
    if c in ("bl", "v03"):
        return 0.0
    m = re.fullmatch(r"m(\d+)", c)
    if m:
        return float(m.group(1))
    y = re.fullmatch(r"y(\d+)", c)
    if y:
        return 12.0 * float(y.group(1))
    return np.nan


def _visit_codes(df: pd.DataFrame) -> pd.Series:
    """Harmonised visit code: ``VISCODE2`` where present, else ``VISCODE`` (lower-case)."""
    code = pd.Series(np.nan, index=df.index, dtype=object)
    if "VISCODE2" in df.columns:
        code = df["VISCODE2"].copy()
    if "VISCODE" in df.columns:
        code = code.where(code.notna() & (code.astype(str).str.strip() != ""), df["VISCODE"])
    return code.astype("string").str.strip().str.lower().fillna("").astype(object)


def _select_visit(df: pd.DataFrame, key: str, usable: pd.Series, visit: str) -> pd.DataFrame:
    """One row per ``key`` following the visit rule (module docstring), among ``usable`` rows.

    ``df`` keeps its columns; rows of the same key and visit that tie are all returned (the
    caller aggregates duplicates).
    """
    if not isinstance(visit, str) or not visit.strip():
        raise InputError(f"visit={visit!r}", hint="'bl', 'first', 'last' or an ADNI visit code")
    visit = visit.strip().lower()
    d = df.loc[usable.to_numpy(dtype=bool)].copy()
    codes = _visit_codes(d)
    d["_code"] = codes
    d["_month"] = [visit_month(c) for c in codes]
    d["_date"] = pd.to_datetime(d.get("EXAMDATE"), errors="coerce") if "EXAMDATE" in d else pd.NaT
    d["_row"] = np.arange(len(d))
    if visit in ("bl", "first", "last"):
        if visit == "bl":
            d["_prio"] = np.select(
                [d["_code"] == "bl", d["_code"].isin(["sc", "scmri"])], [0, 1], 2
            )
        else:
            d["_prio"] = 0
        month = d["_month"].fillna(np.inf)
        asc = visit != "last"
        d["_m"] = month if asc else -month.replace(np.inf, -np.inf)
        dates = d["_date"].fillna(pd.Timestamp.max if asc else pd.Timestamp.min)
        d["_d"] = dates if asc else -(dates - pd.Timestamp(0)).dt.days
        d = d.sort_values([key, "_prio", "_m", "_d", "_row"], kind="stable")
        first = d.groupby(key, sort=False)[["_code"]].transform("first")["_code"]
        d = d[d["_code"] == first]
    else:
        d = d[d["_code"] == visit]
    return d.drop(
        columns=["_code", "_month", "_date", "_row", "_prio", "_m", "_d"], errors="ignore"
    )


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


def _id_map(path: str | os.PathLike) -> dict[str, str]:
    """RID (as text of an int) -> PTID from any ADNI table with both columns."""
    df = _read_csv(path, required=["RID", "PTID"])
    rid = parse_numeric(df["RID"])
    ptid = df["PTID"].astype("string").str.strip()
    mapping: dict[str, str] = {}
    for r, p in zip(rid, ptid, strict=True):
        if np.isfinite(r) and isinstance(p, str) and p:
            mapping.setdefault(str(int(r)), p)
    return mapping


def _patient_column(df: pd.DataFrame, path: Any, id_map: Mapping[str, str] | None) -> pd.Series:
    """PTID per row: the table's own ``PTID`` column, else ``RID`` through ``id_map``."""
    if "PTID" in df.columns:
        return df["PTID"].astype("string").str.strip()
    if "RID" not in df.columns:
        raise InputError(f"{path}: neither PTID nor RID column", hint="ADNI tables carry RID")
    if id_map is None:
        raise InputError(
            f"{path}: keyed by RID only", hint="pass id_map_csv (e.g. DXSUM_PDXCONV.csv)"
        )
    rid = parse_numeric(df["RID"])
    ptid = [id_map.get(str(int(r))) if np.isfinite(r) else None for r in rid]
    n_unmapped = sum(p is None for p in ptid)
    if n_unmapped:
        logger.warning(
            "%s: %d rows whose RID has no PTID in the id map were dropped", path, n_unmapped
        )
    return pd.Series(ptid, index=df.index, dtype="string")


def _assemble(
    blocks: list[pd.DataFrame], patient_ids: Iterable[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Outer-join per-subject blocks (index = PTID), fill NaN with 0 + indicator columns."""
    table = pd.concat(blocks, axis=1, join="outer") if blocks else pd.DataFrame()
    table = table.sort_index()
    if patient_ids is not None:
        wanted = [str(p) for p in dict.fromkeys(patient_ids)]
        table = table.reindex([p for p in wanted if p in table.index])
    values = table.to_numpy(dtype=np.float64, na_value=np.nan)
    values[~np.isfinite(values)] = np.nan
    missing = np.isnan(values)
    names = [str(c) for c in table.columns]
    feats = np.concatenate([np.nan_to_num(values, nan=0.0), missing.astype(np.float64)], axis=1)
    names = names + [f"{n}_missing" for n in names]
    return np.asarray(table.index.astype(str), dtype=object), feats.astype(np.float32), names


def _numeric_block(
    df: pd.DataFrame, columns: Sequence[str], key: pd.Series, prefix: str = ""
) -> pd.DataFrame:
    """Per-subject mean of the parsed numeric ``columns`` (duplicates at one visit averaged)."""
    data = {f"{prefix}{c}": parse_numeric(df[c]) for c in columns}
    block = pd.DataFrame(data, index=df.index)
    block["_pid"] = key.loc[df.index].to_numpy()
    return block.groupby("_pid", sort=True).mean()


def _numeric_like(series: pd.Series) -> bool:
    """At least half of the non-empty values parse as numbers (after stripping '<' / '>')."""
    s = series.dropna().astype(str).str.strip()
    s = s[s != ""]
    if s.empty:
        return False
    return float(np.isfinite(parse_numeric(s, missing_codes=())).mean()) >= 0.5


def extract_biospecimen(
    biomarker_csvs: Sequence[str | os.PathLike] | str | os.PathLike,
    id_map_csv: str | os.PathLike | None = None,
    patient_ids: Iterable[str] | None = None,
    apoe_csv: str | os.PathLike | None = None,
    visit: str = "bl",
    columns: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Biospecimen features (CSF / plasma biomarkers, APOE genotype), one row per subject.

    Parameters
    ----------
    biomarker_csvs
        One or more ADNI biomarker tables (e.g. ``UPENNBIOMK*.csv``, plasma tables) keyed by
        ``RID`` (or ``PTID``) and ``VISCODE`` / ``VISCODE2``.
    id_map_csv
        Table with ``RID`` and ``PTID`` (``DXSUM_PDXCONV.csv`` or ``ADNIMERGE.csv``), needed for
        tables that carry only RID.
    patient_ids
        Keep only these subjects (in this order); ``None``: all, sorted.
    apoe_csv
        ``APOERES.csv`` (``RID``, ``APGEN1``, ``APGEN2``): adds ``APOE_e2``, ``APOE_e3``,
        ``APOE_e4`` allele counts (0-2).
    visit
        Visit rule (module docstring), applied per table among rows that hold at least one
        value of the table's columns; duplicates of one visit are averaged. A subject whose
        rows are all empty is present with every value missing.
    columns
        Biomarker columns to use; ``None``: every column that is not an identifier /
        administrative / diagnosis column and whose values are mostly numeric. A name that two
        tables share gets the table's file stem as prefix (``stem:column``).

    Returns
    -------
    ids : np.ndarray
        (P,) PTIDs of subjects with at least one row in any given table.
    feats : np.ndarray
        (P, 2F) float32: F values (NaN -> 0) then F missing indicators.
    feature_names : list of str
        (2F,) names; indicators are ``<name>_missing``.
    """
    paths = (
        [biomarker_csvs] if isinstance(biomarker_csvs, str | os.PathLike) else list(biomarker_csvs)
    )
    if not paths and apoe_csv is None:
        raise InputError(
            "extract_biospecimen: no biomarker table given", hint="pass UPENNBIOMK.csv"
        )
    if columns is not None:
        bad = [c for c in columns if is_diagnosis_column(c)]
        if bad:
            raise InputError(f"biospecimen columns {bad} are diagnosis-derived", hint="leakage")
    id_map = _id_map(id_map_csv) if id_map_csv is not None else None
    tables: list[tuple[Path, pd.DataFrame, list[str]]] = []
    for p in paths:
        df = _read_csv(p, required=["VISCODE"])
        if columns is None:
            cols = [
                c
                for c in df.columns
                if c.upper() not in _ADMIN_COLUMNS
                and not is_diagnosis_column(c)
                and _numeric_like(df[c])
            ]
        else:
            cols = [c for c in columns if c in df.columns]
        tables.append((Path(p), df, cols))
    if columns is not None:
        found = {c for _, _, cols in tables for c in cols}
        absent = [c for c in columns if c not in found]
        if absent:
            raise InputError(f"biospecimen columns {absent} not in {[str(p) for p in paths]}")
    counts: dict[str, int] = {}
    for _, _, cols in tables:
        for c in cols:
            counts[c] = counts.get(c, 0) + 1
    blocks: list[pd.DataFrame] = []
    for path, df, cols in tables:
        if not cols:
            logger.warning("%s: no biomarker columns found", path)
        key = _patient_column(df, path, id_map)
        df = df.assign(_pid=key)
        df = df[key.notna()]
        # a row is usable when it holds at least one of the table's biomarker values
        usable = np.ones(len(df), dtype=bool)
        if cols:
            usable = np.any([np.isfinite(parse_numeric(df[c])) for c in cols], axis=0)
        chosen = _select_visit(df, "_pid", pd.Series(usable, index=df.index), visit)
        # subjects with a row at the visit but no value in it stay present (all missing)
        every = _select_visit(df, "_pid", pd.Series(True, index=df.index), visit)
        present = set(every["_pid"])
        prefix_cols = [c for c in cols if counts[c] > 1]
        block = _numeric_block(chosen, [c for c in cols if c not in prefix_cols], chosen["_pid"])
        if prefix_cols:
            pref = _numeric_block(chosen, prefix_cols, chosen["_pid"], prefix=f"{path.stem}:")
            block = block.join(pref, how="outer")
        block = block.reindex(sorted(present | set(block.index)))
        blocks.append(block)
        logger.info(
            "%s: %d subjects, %d biomarker columns (visit=%s)", path, len(block), len(cols), visit
        )
    if apoe_csv is not None:
        blocks.append(_apoe_block(apoe_csv, id_map))
    ids, feats, names = _assemble(blocks, patient_ids)
    logger.info("biospecimen: %d subjects x %d features", len(ids), feats.shape[1])
    return ids, feats, names


def _apoe_block(apoe_csv: str | os.PathLike, id_map: Mapping[str, str] | None) -> pd.DataFrame:
    """APOE allele counts (e2, e3, e4) per subject from APGEN1 / APGEN2."""
    df = _read_csv(apoe_csv, required=["APGEN1", "APGEN2"])
    key = _patient_column(df, apoe_csv, id_map)
    a1, a2 = parse_numeric(df["APGEN1"]), parse_numeric(df["APGEN2"])
    ok = np.isin(a1, (2, 3, 4)) & np.isin(a2, (2, 3, 4))
    block = pd.DataFrame(
        {
            f"APOE_e{k}": np.where(ok, (a1 == k).astype(float) + (a2 == k), np.nan)
            for k in (2, 3, 4)
        },
        index=df.index,
    )
    block["_pid"] = key.to_numpy()
    block = block[block["_pid"].notna()]
    return block.groupby("_pid", sort=True).first()


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


def parse_numeric_column(values: pd.Series, path: Any, column: str) -> np.ndarray:
    """:func:`parse_numeric` with the rule for unparseable text.

    Rule: a column with non-blank values none of which parses is an error (a wrong column or a
    mangled export, never silently all-missing); a column where some non-blank values do not
    parse is kept (those become missing) and the count is logged as a warning.
    """
    out = parse_numeric(values)
    text = pd.Series(list(values), dtype=object).astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy()
    stripped = text.str.replace(r"^[<>]=?\s*", "", regex=True)
    unparsed = present & pd.to_numeric(stripped, errors="coerce").isna().to_numpy()
    n_bad = int(unparsed.sum())
    if n_bad and n_bad == int(present.sum()):
        raise InputError(
            f"{path}: numeric column {column!r} has no parseable value ({n_bad} non-blank "
            f"values, e.g. {text[unparsed].iloc[0]!r})",
            hint="check the column holds numbers, or remove it from the column list",
        )
    if n_bad:
        logger.warning(
            "%s: %d of %d non-blank values of %s are not numbers; treated as missing",
            path,
            n_bad,
            int(present.sum()),
            column,
        )
    return out


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
        Visit rule (module docstring); default baseline.
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
        raw = chosen[c].astype("string").str.strip()
        levels = CATEGORY_LEVELS.get(c) or tuple(sorted(set(raw.dropna()) - {""}))
        known = raw.isin(levels).fillna(False).to_numpy(dtype=bool)
        n_unknown = int((raw.notna() & (raw != "") & ~known).sum())
        if n_unknown:
            logger.warning(
                "%s: %d values of %s outside %s treated as missing",
                adnimerge_csv,
                n_unknown,
                c,
                levels,
            )
        for lev in levels:
            block[f"{c}={lev}"] = np.where(known, (raw == lev).fillna(False).astype(float), np.nan)
    ids, feats, names = _assemble([block], patient_ids)
    logger.info(
        "%s: clinical %d subjects x %d features (visit=%s)",
        adnimerge_csv,
        len(ids),
        feats.shape[1],
        visit,
    )
    return ids, feats, names


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
