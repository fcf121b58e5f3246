"""Late fusion: the average of single-modality models' predictions.

One single-modality model per modality (AMC's encoder and per-modality layers, mean pooling, its
own task head); the fused prediction is the mean, over the modalities a patient has, of the
per-modality predictions: class probabilities (classification) or per-bin hazards (survival).
It is returned as logits of that mean (log of the mean probabilities; logit of the mean hazard),
so softmax / sigmoid of the output is exactly the average. The models are trained jointly through
the averaged prediction (one training loop for every method) rather than one by one.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from amc.baselines.common import (
    BaselineOutput,
    ModalityEncoders,
    make_head,
    resolve_options,
    resolve_present,
)
from amc.model.network import AMCConfig, ModalityInput


def _log_mean(log_values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """log of the mean of exp(log_values) (B, M, K) over present modalities (B, M) -> (B, K)."""
    masked = log_values.masked_fill(~present.unsqueeze(-1), -math.inf)
    count = present.sum(dim=1, keepdim=True).clamp_min(1).to(log_values.dtype)
    out = torch.logsumexp(masked, dim=1) - count.log()
    # A patient with no modality at all gets the uninformative prediction (all logits 0).
    return torch.where(present.any(dim=1, keepdim=True), out, torch.zeros_like(out))


class LateFusion(nn.Module):
    """No options."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        resolve_options("late", options, {})
        self.task = config.task
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        self.norm = nn.LayerNorm(config.hidden)
        self.heads = nn.ModuleList(make_head(config, config.hidden) for _ in self.names)

    def per_modality_logits(
        self, inputs: dict[str, ModalityInput], present: torch.Tensor
    ) -> torch.Tensor:
        """(B, M, K): each single-modality model's logits."""
        pooled = self.norm(self.encoders(inputs, present)).mean(dim=2)  # (B, M, D)
        return torch.stack([head(pooled[:, m]) for m, head in enumerate(self.heads)], dim=1)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        logits = self.per_modality_logits(inputs, present).float()
        if self.task == "classification":
            fused = _log_mean(F.log_softmax(logits, dim=-1), present)
        else:
            log_hazard = _log_mean(F.logsigmoid(logits), present)
            log_survive = _log_mean(F.logsigmoid(-logits), present)
            fused = log_hazard - log_survive  # logit of the mean hazard
        return BaselineOutput(logits=fused)
