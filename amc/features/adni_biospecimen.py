"""ADNI biospecimen features: CSF / plasma biomarker tables and the APOE genotype."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.adni_tables import (
    _ADMIN_COLUMNS,
    _assemble,
    _id_map,
    _numeric_block,
    _numeric_like,
    _patient_column,
    _read_csv,
    _select_visit,
    is_diagnosis_column,
    parse_numeric,
)

logger = logging.getLogger("amc.features.adni")


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
        Visit rule (see :mod:`amc.features.adni`), applied per table among rows that hold at
        least one value of the table's columns; duplicates of one visit are averaged. A subject
        whose rows are all empty is present with every value missing.
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
    tables = _biomarker_tables(paths, columns)
    counts: dict[str, int] = {}
    for _, _, cols in tables:
        for c in cols:
            counts[c] = counts.get(c, 0) + 1
    shared = {c for c, n in counts.items() if n > 1}
    blocks = [_table_block(path, df, cols, shared, id_map, visit) for path, df, cols in tables]
    if apoe_csv is not None:
        blocks.append(_apoe_block(apoe_csv, id_map))
    ids, feats, names = _assemble(blocks, patient_ids)
    logger.info("biospecimen: %d subjects x %d features", len(ids), feats.shape[1])
    return ids, feats, names


def _biomarker_tables(
    paths: Sequence[str | os.PathLike], columns: Sequence[str] | None
) -> list[tuple[Path, pd.DataFrame, list[str]]]:
    """Each table with its biomarker columns: ``columns`` where given (each must be in some
    table), else every mostly-numeric column that is not administrative or diagnostic."""
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
    return tables


def _table_block(
    path: Path,
    df: pd.DataFrame,
    cols: list[str],
    shared: set[str],
    id_map: Mapping[str, str] | None,
    visit: str,
) -> pd.DataFrame:
    """One table's per-subject values at the chosen visit (index PTID); a column name in
    ``shared`` (another table has it too) gets the prefix ``<file stem>:``."""
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
    prefix_cols = [c for c in cols if c in shared]
    block = _numeric_block(chosen, [c for c in cols if c not in prefix_cols], chosen["_pid"])
    if prefix_cols:
        pref = _numeric_block(chosen, prefix_cols, chosen["_pid"], prefix=f"{path.stem}:")
        block = block.join(pref, how="outer")
    block = block.reindex(sorted(present | set(block.index)))
    logger.info(
        "%s: %d subjects, %d biomarker columns (visit=%s)", path, len(block), len(cols), visit
    )
    return block


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
