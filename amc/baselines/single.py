"""Single-modality model: one modality through AMC's encoder and per-modality layers, mean pooling
and the head; every other modality is ignored. A patient without that modality gets the
prediction of a learned "missing" representation (the model's best guess without data).
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


class SingleModality(nn.Module):
    """Options: ``modality`` (the first one): the modality used."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        names = list(config.modalities)
        opts = resolve_options("single", options, {"modality": names[0] if names else None})
        if opts["modality"] not in names:
            raise ValueError(f"single modality={opts['modality']!r} is not one of {names}")
        self.all_names = names
        self.index = names.index(opts["modality"])
        self.encoders = ModalityEncoders(config, names=[opts["modality"]])
        self.missing = nn.Parameter(torch.zeros(config.hidden))
        self.norm = nn.LayerNorm(config.hidden)
        self.head = make_head(config, config.hidden)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.all_names))[
            :, self.index : self.index + 1
        ]
        pooled = self.norm(self.encoders(inputs, present)).mean(dim=2)[:, 0]  # (B, D)
        pooled = torch.where(present, pooled, self.missing.to(pooled.dtype))
        return BaselineOutput(logits=self.head(pooled))
