"""The ground-truth modality-quality sidecar that every synthetic generator may write.

``quality.csv`` at a synthetic cohort's root, one row per (patient, modality):

============  =====================================================================
patient_id    str, the same id the feature tables use
modality      str, the modality name the dataset uses (``lab``, ``note``, ``code``, ...)
quality       float in [0, 1]; 1 = clean, 0 = no usable information (e.g. missing)
corruption    ``none`` | ``noise`` | ``template`` | ``sparse`` | ``missing`` | ``batch``
============  =====================================================================

It is for analysis only (e.g. correlating the learned modality importance with the true
quality); training never reads it.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from amc.data.store import atomic_path

CORRUPTIONS = ("none", "noise", "template", "sparse", "missing", "batch")
QUALITY_COLUMNS = ("patient_id", "modality", "quality", "corruption")


def quality_frame(
    patient_ids: np.ndarray | list[str],
    modality: str,
    quality: np.ndarray,
    corruption: np.ndarray | list[str],
) -> pd.DataFrame:
    """Rows of the sidecar for one modality.

    Parameters
    ----------
    patient_ids : (P,) ids.
    modality : modality name.
    quality : (P,) floats in [0, 1].
    corruption : (P,) labels from :data:`CORRUPTIONS`.
    """
    quality = np.asarray(quality, dtype=np.float64)
    corruption = np.asarray(corruption, dtype=object)
    if quality.shape != (len(patient_ids),) or corruption.shape != (len(patient_ids),):
        raise ValueError("patient_ids, quality and corruption need the same length")
    if np.any(~np.isfinite(quality)) or quality.min(initial=0) < 0 or quality.max(initial=0) > 1:
        raise ValueError(f"quality of modality {modality!r} must lie in [0, 1]")
    unknown = set(corruption.tolist()) - set(CORRUPTIONS)
    if unknown:
        raise ValueError(f"unknown corruption labels {sorted(unknown)}; allowed: {CORRUPTIONS}")
    return pd.DataFrame(
        {
            "patient_id": [str(p) for p in patient_ids],
            "modality": modality,
            "quality": np.round(quality, 4),
            "corruption": corruption,
        }
    )


def write_quality(frames: list[pd.DataFrame], path: str | os.PathLike) -> pd.DataFrame:
    """Concatenate per-modality frames, sort by (patient_id, modality) and write CSV atomically."""
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["patient_id", "modality"], kind="stable").reset_index(drop=True)
    with atomic_path(path) as tmp:
        df.loc[:, list(QUALITY_COLUMNS)].to_csv(tmp, index=False)
    return df
