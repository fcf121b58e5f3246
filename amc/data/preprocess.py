"""Preprocessing fitted on the training split only: per-feature standardisation and optional
selection of the most variable features (e.g. genes), applied to every split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from amc.data.cohort import Cohort


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


def fit_preprocessing(
    cohort: Cohort, train_index: np.ndarray, max_features: dict[str, int] | None = None
) -> dict[str, ModalityScaler | None]:
    """Fit a scaler per vector modality on the training rows only (volumes: None)."""
    scalers: dict[str, ModalityScaler | None] = {}
    for m, name in enumerate(cohort.modalities):
        x = cohort.features[name]
        if x.ndim != 2 or name in cohort.bags:
            # volumes are intensity-normalised per subject at extraction; bags are normalised
            # by the bag encoder's layer norm
            scalers[name] = None
            continue
        limit = (max_features or {}).get(name)
        scalers[name] = fit_scaler(x[train_index], cohort.present[train_index, m], limit)
    return scalers


def model_inputs(
    cohort: Cohort, scalers: dict[str, ModalityScaler | None]
) -> dict[str, torch.Tensor]:
    """Scaled float32 tensors per modality; rows of absent modalities are zero."""
    import torch  # only the stages that run a model pay for torch

    from amc.data.bags import bag_input

    out = {}
    for m, name in enumerate(cohort.modalities):
        if name in cohort.bags:  # (bag, mask) for a bag encoder
            out[name] = bag_input(*cohort.bags[name], cohort.present[:, m])
            continue
        x = cohort.features[name]
        scaler = scalers[name]
        x = scaler.transform(x) if scaler is not None else x.astype(np.float32)
        x = np.where(cohort.present[:, m].reshape(-1, *([1] * (x.ndim - 1))), x, 0.0)
        if x.ndim == 4:
            x = x[:, None]  # (P, 1, X, Y, Z)
        out[name] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return out


def input_sizes(cohort: Cohort, scalers: dict[str, ModalityScaler | None]) -> dict[str, Any]:
    """Model input size per modality: features kept by the scaler, or (1, X, Y, Z) volumes."""
    sizes: dict[str, Any] = {}
    for name in cohort.modalities:
        x = cohort.features[name]
        scaler = scalers[name]
        if name in cohort.bags:
            sizes[name] = int(cohort.bags[name][0].shape[-1])
            continue
        sizes[name] = output_dim(scaler, x.shape[1]) if scaler is not None else (1, *x.shape[1:])
    return sizes
