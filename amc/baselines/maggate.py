"""MAGGate: the Multimodal Adaptation Gate (Rahman et al., ACL 2020).

Follows section 3 (eqs. 1-6): the main modality's representation h is shifted by a displacement
H computed from the other modalities, each through a gate conditioned on the main one:
    g_j = ReLU(W_gj [h; o_j] + b_gj),      H = sum_j g_j * (W_j o_j + b_j),
    alpha = min(beta * ||h||_2 / ||H||_2, 1),   z = LayerNorm(h + alpha * H),
then a transformer layer, pooling and the head.

Which modality is main (option ``main``, default: the first one) follows MAG's choice of the
modality with the strongest, most complete representation (language in the paper), shifted by the
auxiliary ones: ``note`` for MIMIC-IV (the clinical text), ``rna`` for TCGA (recorded for nearly
every case and the strongest unimodal survival signal), ``mri`` for ADNI (the imaging that
drives the diagnosis).

Simplifications: medical tokens are not word-aligned across modalities, so every main token is
shifted by the other modalities' mean-pooled vectors o_j (the paper has per-word aligned acoustic
and visual features); the bias sits inside each modality's displacement term so that an absent
auxiliary modality contributes nothing (no displacement at all when only the main is present);
an absent main modality is replaced by a learned "missing" token set, which the others then
shift.
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
from amc.model.encoders import ModalityTransformer
from amc.model.network import AMCConfig, ModalityInput


class MAGGate(nn.Module):
    """Options: ``main`` (first modality), ``beta`` (1.0): the scale of the displacement."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        c = config
        names = list(c.modalities)
        opts = resolve_options(
            "maggate", options, {"main": names[0] if names else None, "beta": 1.0}
        )
        if opts["main"] not in names:
            raise ValueError(f"maggate main={opts['main']!r} is not one of the modalities {names}")
        self.main = names.index(opts["main"])
        self.beta = float(opts["beta"])
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        self.others = [m for m in range(len(names)) if m != self.main]
        self.gates = nn.ModuleDict({str(j): nn.Linear(2 * c.hidden, c.hidden) for j in self.others})
        self.shifts = nn.ModuleDict({str(j): nn.Linear(c.hidden, c.hidden) for j in self.others})
        self.missing_main = nn.Parameter(torch.randn(c.tokens, c.hidden) * 0.02)
        self.norm_in = nn.LayerNorm(c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.encoder = ModalityTransformer(c.hidden, c.heads, 1, c.dropout)
        self.norm = nn.LayerNorm(c.hidden)
        self.head = make_head(config, c.hidden)

    def shift(
        self, main: torch.Tensor, others: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """h + alpha * H for main tokens (B, N, D), pooled modalities (B, M, D), present (B, M)."""
        displacement = torch.zeros_like(main)
        for j in self.others:
            o = others[:, j, None].expand_as(main)
            g = torch.relu(self.gates[str(j)](torch.cat([main, o], dim=-1)))
            displacement = displacement + present[:, j, None, None].to(main.dtype) * g * (
                self.shifts[str(j)](o)
            )
        ratio = main.norm(dim=-1, keepdim=True) / displacement.norm(dim=-1, keepdim=True).clamp_min(
            1e-6
        )
        alpha = (self.beta * ratio).clamp(max=1.0)
        return main + alpha * displacement

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        tokens = self.encoders(inputs, present)  # (B, M, N, D), absent rows zero
        main_present = present[:, self.main, None, None]
        main = torch.where(main_present, tokens[:, self.main], self.missing_main.to(tokens.dtype))
        z = self.dropout(self.norm_in(self.shift(main, tokens.mean(dim=2), present)))
        pooled = self.norm(self.encoder(z)).mean(dim=1)
        return BaselineOutput(logits=self.head(pooled))
