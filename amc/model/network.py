"""The AMC network (paper section 4).

encoder per modality -> ``encoder_layers`` vanilla layers per modality -> ``layers`` improved
blocks on the modalities stacked along the batch axis (attention within a modality, O(M N^2))
-> AMC token fusion between adjacent blocks from the block's own map -> mean-pool each modality,
concatenate (B, M*D) -> linear head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from amc.model.block import ImprovedBlock
from amc.model.encoders import (
    ModalityTransformer,
    QueryTokenEncoder,
    VectorTokenizer,
    VolumeEncoder,
)
from amc.model.fusion import (
    LinearTokenScorer,
    alignment_importance,
    modality_importance,
    replace_uninformative_tokens,
    token_scores,
)
from amc.model.heads import ClassificationHead, SurvivalHead
from amc.model.losses import instance_contrastive_loss, token_contrastive_loss

EncoderKind = Literal["vector", "query", "bag", "volume"]
ModalityInput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclass
class AMCConfig:
    """Everything that defines an AMC network.

    ``modalities`` maps a name to its input size: an int F for vectors (B, F) and bags (B, P, F),
    or a shape tuple (1, X, Y, Z) / (X, Y, Z) for volumes. ``encoders`` overrides the encoder
    per modality (default: ``vector`` for ints, ``volume`` for shapes).
    """

    modalities: dict[str, int | tuple[int, ...]]
    task: Literal["classification", "survival"] = "classification"
    num_classes: int = 2
    num_bins: int = 4
    hidden: int = 64
    heads: int = 8
    layers: int = 2
    tokens: int = 16
    experts: int = 8
    top_k: int = 2
    encoder_layers: int = 1
    dropout: float = 0.1
    attention: Literal["differential", "vanilla"] = "differential"
    ffn: Literal["smoe", "dense"] = "smoe"
    lambda_init: float = 0.1
    fusion: bool = True
    importance: Literal["mean", "std", "max", "alignment"] = "mean"
    token_score: Literal["attention", "linear"] = "attention"
    replace_rule: Literal["complement", "paper"] = "complement"
    temperature: float = 0.1
    encoders: dict[str, EncoderKind] = field(default_factory=dict)

    def encoder_kind(self, name: str) -> EncoderKind:
        if name in self.encoders:
            return self.encoders[name]
        return "volume" if isinstance(self.modalities[name], tuple | list) else "vector"


@dataclass
class AMCOutput:
    """What :meth:`AMC.forward` returns (shapes in the field comments)."""

    logits: torch.Tensor  # (B, C) or (B, T)
    modality_importance: torch.Tensor  # (B, M)
    token_scores: torch.Tensor  # (B, M, N)
    replaced_from: torch.Tensor  # (B, M, N) int64
    aux_losses: dict[str, torch.Tensor]
    pooled: torch.Tensor  # (B, M, D)


class AMC(nn.Module):
    """Adaptive Modality Token Re-balancing network."""

    def __init__(self, config: AMCConfig) -> None:
        super().__init__()
        self.config = c = config
        if not c.modalities:
            raise ValueError("AMCConfig.modalities is empty")
        self.names = list(c.modalities)
        self.encoders = nn.ModuleDict()
        for name, size in c.modalities.items():
            kind = c.encoder_kind(name)
            if kind == "vector":
                enc: nn.Module = VectorTokenizer(int(size), c.tokens, c.hidden, c.dropout)
            elif kind in ("query", "bag"):
                enc = QueryTokenEncoder(
                    int(size), c.tokens, c.hidden, c.heads, bag=kind == "bag", dropout=c.dropout
                )
            elif kind == "volume":
                enc = VolumeEncoder(c.tokens, c.hidden, dropout=c.dropout)
            else:
                raise ValueError(f"unknown encoder {kind!r} for modality {name!r}")
            self.encoders[name] = enc
        self.modality_layers = nn.ModuleDict(
            {
                n: ModalityTransformer(c.hidden, c.heads, c.encoder_layers, c.dropout)
                for n in self.names
            }
        )
        self.blocks = nn.ModuleList(
            ImprovedBlock(
                c.hidden, c.heads, c.attention, c.ffn, c.experts, c.top_k, c.lambda_init, c.dropout
            )
            for _ in range(c.layers)
        )
        self.scorer = (
            LinearTokenScorer(len(self.names), c.hidden) if c.token_score == "linear" else None
        )
        self.norm = nn.LayerNorm(c.hidden)
        in_dim = len(self.names) * c.hidden
        if c.task == "classification":
            self.head: nn.Module = ClassificationHead(in_dim, c.num_classes, c.dropout)
        elif c.task == "survival":
            self.head = SurvivalHead(in_dim, c.num_bins, c.dropout)
        else:
            raise ValueError(f"task={c.task!r} is not one of classification, survival")

    def encode(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        """Modality-specific encoders + vanilla layers: -> (B, M, N, D)."""
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing}; expected {self.names}")
        tokens = []
        for name in self.names:
            value = inputs[name]
            if isinstance(value, tuple):
                x = self.encoders[name](*value)
            else:
                x = self.encoders[name](value)
            tokens.append(self.modality_layers[name](x))
        return torch.stack(tokens, dim=1)

    def _scores(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        return token_scores(attn) if self.scorer is None else self.scorer(x)

    def _importance(
        self, scores: torch.Tensor, present: torch.Tensor, aligned: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, M) importance: cross-modal alignment if configured, else eq. 2 on ``scores``."""
        if aligned is not None:
            return aligned
        return modality_importance(scores, present, self.config.importance)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> AMCOutput:
        """Run the network.

        Args:
            inputs: name -> (B, F) vector, (B, 1, X, Y, Z) volume, or (bag (B, P, F), mask (B, P)).
                Absent modalities may hold anything (zeros); ``present`` masks them out.
            present: (B, M) bool, True where the modality exists (default: all present).
            fuse: apply token fusion (False during the warm-up epochs).
        """
        c = self.config
        x = self.encode(inputs)  # (B, M, N, D)
        b, m, n, d = x.shape
        if present is None:
            present = torch.ones(b, m, dtype=torch.bool, device=x.device)
        present = present.to(device=x.device, dtype=torch.bool)
        x = x * present.view(b, m, 1, 1).to(x.dtype)
        aux = {
            "instance": instance_contrastive_loss(x, present, c.temperature),
            "token": token_contrastive_loss(x, present, c.temperature),
        }
        # fusion.importance=alignment: agreement of the L_I embeddings, fixed before the blocks.
        aligned = alignment_importance(x, present) if c.importance == "alignment" else None
        replaced_from = torch.full((b, m, n), -1, dtype=torch.long, device=x.device)
        balance = x.new_zeros((), dtype=torch.float32)
        fused = False
        attn = None
        for index, block in enumerate(self.blocks):
            out, attn, bal = block(x.reshape(b * m, n, d))
            x = out.view(b, m, n, d)
            attn = attn.view(b, m, n, n)
            balance = balance + bal.float()
            if c.fusion and fuse and index < len(self.blocks) - 1:
                scores = self._scores(x, attn)
                if self.scorer is not None:
                    x = x * scores.unsqueeze(-1).to(x.dtype)
                importance = self._importance(scores, present, aligned)
                x, replaced_from = replace_uninformative_tokens(
                    x, scores, importance, present, c.replace_rule
                )
                fused = True
        aux["balance"] = balance / max(len(self.blocks), 1)
        scores = self._scores(x, attn) if attn is not None else x.new_zeros(b, m, n)
        importance = self._importance(scores, present, aligned)
        pooled = self.norm(x).mean(dim=2)  # (B, M, D)
        if not fused:
            # Without fusion nothing imputed the absent modalities: keep them out of the head.
            pooled = pooled * present.view(b, m, 1).to(pooled.dtype)
        logits = self.head(pooled.reshape(b, m * d))
        return AMCOutput(
            logits=logits,
            modality_importance=importance,
            token_scores=scores,
            replaced_from=replaced_from,
            aux_losses=aux,
            pooled=pooled,
        )
