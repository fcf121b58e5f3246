"""MIMIC-IV ICD codes: a multi-hot over a fixed hashed vocabulary per index admission
(layout in :mod:`amc.features.mimic`)."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.mimic_io import DIAGNOSES, PROCEDURES, _hadm_set, _read_chunks

logger = logging.getLogger("amc.features.mimic")

#: ICD categories that state a death (ICD-9 798 sudden death / unknown cause; ICD-10 R96 other
#: sudden death, R98 unattended death, R99 ill-defined and unknown cause of mortality).
DEATH_CODE_TOKENS = ("dx9:798", "dx10:R96", "dx10:R98", "dx10:R99")


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
