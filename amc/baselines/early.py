"""Early fusion: the modalities' features concatenated into one vector, then an MLP.

Each modality is only tokenised by AMC's encoder (no per-modality layers: for a feature vector a
linear map per sub-vector, i.e. a re-parametrisation of the raw features; for bags and volumes the
query / CNN encoder that turns them into a fixed-size input). The flattened tokens of every
modality (zero when absent) and the (B, M) present indicators are concatenated and fed to a
two-layer MLP and the head: all interactions are left to the MLP.
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


class EarlyFusion(nn.Module):
    """Options: ``mlp_hidden`` (model hidden): width of the MLP."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        opts = resolve_options("early", options, {"mlp_hidden": config.hidden})
        c = config
        self.encoders = ModalityEncoders(config, layers=False)
        self.names = self.encoders.names
        m = len(self.names)
        width = int(opts["mlp_hidden"])
        self.mlp = nn.Sequential(
            nn.LayerNorm(m * c.tokens * c.hidden + m),
            nn.Linear(m * c.tokens * c.hidden + m, width),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(width, width),
            nn.GELU(),
        )
        self.head = make_head(config, width)

    def features(
        self, inputs: dict[str, ModalityInput], present: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The concatenated input of the MLP: (B, M*N*D + M)."""
        present = resolve_present(present, inputs, len(self.names))
        tokens = self.encoders(inputs, present)
        return torch.cat([tokens.flatten(1), present.to(tokens.dtype)], dim=-1)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        return BaselineOutput(logits=self.head(self.mlp(self.features(inputs, present))))
