"""ADNI study-data tables: reading, numeric parsing, the visit rule and per-subject assembly.

Shared by the diagnosis, biospecimen and clinical extractors; the rules (visit selection, numeric
parsing, missing values) are described in :mod:`amc.features.adni`.
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

from amc.errors import InputError

logger = logging.getLogger("amc.features.adni")

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
    """One row per ``key`` among ``usable`` rows, by the visit rule of :mod:`amc.features.adni`.

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
