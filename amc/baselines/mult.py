"""MulT: Multimodal Transformer (Tsai et al., ACL 2019).

Follows section 3: for every ordered pair of modalities (source j -> target i) a crossmodal
transformer (eqs. 3-4: queries from the target, keys / values from the source, pre-norm layers
with residual and position-wise feed-forward) lets the target attend to the source; the streams
into a target are concatenated along features (Z_i = [Z_{j->i}; Z_{k->i}; ...]) and passed
through a self-attention transformer; the targets' outputs are pooled and concatenated for the
head.

Simplifications: the 1D temporal convolutions and sinusoidal positions of the paper are replaced
by AMC's encoders (which carry learned positions); a target's concatenated streams are projected
back to width D before its self-attention layer; outputs are mean-pooled over tokens instead of
taking the last time step (medical tokens are not a time series). Missing modalities (the paper
assumes all present): a target attends to nothing in an absent source, so that stream carries
only the target's own tokens (residual and feed-forward), and an absent target contributes a zero
vector to the head.
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


class CrossModalLayer(nn.Module):
    """Target (B, N, D) attends to source (B, N', D): cross-attention + FFN -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, target: torch.Tensor, source: torch.Tensor, source_present: torch.Tensor
    ) -> torch.Tensor:
        """``source_present`` (B,) bool: where False the source adds nothing to the target."""
        kv = self.norm_kv(source)
        h, _ = self.attn(self.norm_q(target), kv, kv, need_weights=False)
        x = target + self.dropout(h) * source_present[:, None, None].to(h.dtype)
        return x + self.dropout(self.ff(self.norm_ff(x)))


class MulT(nn.Module):
    """Options: ``cross_layers`` (model layers): depth of each crossmodal transformer;
    ``self_layers`` (1): self-attention layers per target after the concatenation."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        opts = resolve_options("mult", options, {"cross_layers": config.layers, "self_layers": 1})
        self.config = c = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        m = len(self.names)
        if m < 2:
            raise ValueError("method 'mult' needs at least 2 modalities (it is cross-modal)")
        self.pairs = [(j, i) for i in range(m) for j in range(m) if j != i]
        self.cross = nn.ModuleDict(
            {
                self._key(j, i): nn.ModuleList(
                    CrossModalLayer(c.hidden, c.heads, c.dropout)
                    for _ in range(int(opts["cross_layers"]))
                )
                for j, i in self.pairs
            }
        )
        self.merge = nn.ModuleList(nn.Linear((m - 1) * c.hidden, c.hidden) for _ in range(m))
        self.self_attn = nn.ModuleList(
            ModalityTransformer(c.hidden, c.heads, int(opts["self_layers"]), c.dropout)
            for _ in range(m)
        )
        self.norm = nn.LayerNorm(c.hidden)
        self.head = make_head(config, m * c.hidden)

    @staticmethod
    def _key(source: int, target: int) -> str:
        return f"{source}_to_{target}"

    def streams(
        self, tokens: torch.Tensor, present: torch.Tensor
    ) -> dict[tuple[int, int], torch.Tensor]:
        """Crossmodal streams (source j, target i) -> (B, N, D) from tokens (B, M, N, D)."""
        out = {}
        for j, i in self.pairs:
            x = tokens[:, i]
            for layer in self.cross[self._key(j, i)]:
                x = layer(x, tokens[:, j], present[:, j])
            out[(j, i)] = x
        return out

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        tokens = self.encoders(inputs, present)  # (B, M, N, D)
        streams = self.streams(tokens, present)
        mask = present.to(tokens.dtype)
        pooled = []
        for i in range(len(self.names)):
            into = [streams[(j, i)] for j, t in self.pairs if t == i]
            z = self.self_attn[i](self.merge[i](torch.cat(into, dim=-1)))
            pooled.append(self.norm(z).mean(dim=1) * mask[:, i : i + 1])
        return BaselineOutput(logits=self.head(torch.cat(pooled, dim=-1)))
