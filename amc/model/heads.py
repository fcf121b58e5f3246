"""Task heads on the concatenated pooled modalities (B, M*D), and the survival time bins."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ClassificationHead(nn.Module):
    """(B, M*D) -> (B, C) class logits."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, num_classes)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SurvivalHead(nn.Module):
    """(B, M*D) -> (B, T) discrete-time hazard logits; hazard_t = sigmoid(logit_t)."""

    def __init__(self, in_dim: int, num_bins: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, num_bins)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def survival_curve(hazard_logits: torch.Tensor) -> torch.Tensor:
    """S_t = prod_{j<=t} (1 - h_j). (B, T) -> (B, T)."""
    return torch.cumprod(1.0 - torch.sigmoid(hazard_logits.float()), dim=-1)


def risk_score(hazard_logits: torch.Tensor) -> torch.Tensor:
    """risk = -sum_t S_t (higher = worse outcome). (B, T) -> (B,)."""
    return -survival_curve(hazard_logits).sum(dim=-1)


def survival_bin_edges(time: np.ndarray, event: np.ndarray, num_bins: int = 4) -> np.ndarray:
    """Inner cut points of the time bins: quantiles of the uncensored (training) times.

    Returns ``num_bins - 1`` increasing cut points; bin j holds times in [cut_{j-1}, cut_j).
    """
    observed = np.asarray(time, dtype=float)[np.asarray(event).astype(bool)]
    if observed.size < num_bins:
        raise ValueError(
            f"need at least {num_bins} uncensored training times to cut {num_bins} bins, "
            f"got {observed.size}"
        )
    return np.quantile(observed, np.linspace(0, 1, num_bins + 1)[1:-1])


def discretize_time(time: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Bin index in [0, len(cuts)] for each time. (P,) -> (P,) int64."""
    return np.searchsorted(np.asarray(cuts), np.asarray(time, dtype=float), side="right").astype(
        np.int64
    )
