"""TF: Tensor Fusion Network (Zadeh et al., EMNLP 2017).

Follows eqs. 1-2 of the paper: each modality's embedding z_m is extended by a constant 1,
z'_m = [z_m; 1], and the fusion is the flattened outer product z'_1 (x) z'_2 (x) ... (x) z'_M,
which holds every unimodal term, every bimodal product, ..., up to the M-modal products. A
"sentiment inference subnetwork" (two ReLU layers) then feeds the task head.

Simplifications: the modality embedding networks are AMC's encoders, mean-pooled over tokens and
projected to a small width w (option ``width``) so that the fused size (w+1)^M stays tractable
for M = 4. The paper has no missing modalities; here an absent modality's embedding is 0, so
z'_m = [0; 1] and the tensor reduces to the interactions of the present modalities.
"""

from __future__ import annotations

import torch
from torch import nn

from amc.baselines.common import (
    BaselineOutput,
    ModalityEncoders,
    make_head,
    resolve_options,
    resolve_present,
)
from amc.model.network import AMCConfig, ModalityInput

DEFAULTS = {"width": 8}


def tensor_fusion(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Flattened outer product of [z_m; 1] over modalities: list of (B, w_m) -> (B, prod(w_m+1))."""
    fused = None
    for z in vectors:
        z1 = torch.cat([z, z.new_ones(z.shape[0], 1)], dim=-1)
        fused = z1 if fused is None else (fused.unsqueeze(-1) * z1.unsqueeze(1)).flatten(1)
    return fused


class TensorFusion(nn.Module):
    """Options: ``width`` (8): per-modality projection width before the outer product."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        opts = resolve_options("tf", options, DEFAULTS)
        width = int(opts["width"])
        self.config = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        self.project = nn.ModuleDict(
            {
                n: nn.Sequential(nn.LayerNorm(config.hidden), nn.Linear(config.hidden, width))
                for n in self.names
            }
        )
        fused_dim = (width + 1) ** len(self.names)
        self.post = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(fused_dim, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
        )
        self.head = make_head(config, config.hidden)

    def embeddings(
        self, inputs: dict[str, ModalityInput], present: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per-modality projected embeddings z_m (B, w), 0 for absent modalities."""
        present = resolve_present(present, inputs, len(self.names))
        pooled = self.encoders(inputs, present).mean(dim=2)  # (B, M, D)
        mask = present.to(pooled.dtype)
        return [
            self.project[n](pooled[:, m]) * mask[:, m : m + 1] for m, n in enumerate(self.names)
        ]

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        fused = tensor_fusion(self.embeddings(inputs, present))
        return BaselineOutput(logits=self.head(self.post(fused)))
