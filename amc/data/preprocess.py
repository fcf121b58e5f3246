"""Preprocessing fitted on the training split only: per-feature standardisation and optional
selection of the most variable features (e.g. genes), applied to every split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ModalityScaler:
    """Selected feature columns and their train-split mean / std (for one vector modality)."""

    columns: np.ndarray | None  # (F',) int or None for all
    mean: np.ndarray
    std: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.columns is not None:
            x = x[:, self.columns]
        return ((x - self.mean) / self.std).astype(np.float32)


def fit_scaler(
    x_train: np.ndarray, present_train: np.ndarray, max_features: int | None = None
) -> ModalityScaler:
    """Fit on the training rows where the modality is present.

    Parameters
    ----------
    x_train
        (P, F) training features.
    present_train
        (P,) bool, True where the modality exists.
    max_features
        Keep the ``max_features`` columns of highest training variance.
    """
    rows = x_train[present_train] if present_train.any() else x_train
    columns = None
    if max_features is not None and max_features < rows.shape[1]:
        variance = rows.var(axis=0)
        columns = np.sort(np.argsort(-variance, kind="stable")[:max_features])
        rows = rows[:, columns]
    mean = rows.mean(axis=0)
    std = rows.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)  # constant columns stay constant instead of exploding
    return ModalityScaler(columns=columns, mean=mean.astype(np.float32), std=std.astype(np.float32))


def output_dim(scaler: ModalityScaler, in_dim: int) -> int:
    return in_dim if scaler.columns is None else len(scaler.columns)
