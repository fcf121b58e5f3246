"""Modality-specific encoders (paper Appendix B.6): every modality becomes N tokens of width D.

- :class:`VectorTokenizer`: feature vector (B, F) -> pad + split into N sub-vectors -> linear ->
  learnable positional embedding (MIMIC-IV, ADNI tabular).
- :class:`QueryTokenEncoder`: N learned queries attend (one transformer layer) to sub-vectors of a
  feature vector (B, F) or to a bag of patch embeddings (B, P, F) (TCGA, Q-Former style).
- :class:`VolumeEncoder`: 3D CNN with batch-norm for volumes (B, 1, X, Y, Z) (ADNI MRI).
- :class:`ModalityTransformer`: the modality-specific vanilla pre-norm transformer layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from amc.model.dropout import Dropout, dropout


def _pad_split(x: torch.Tensor, parts: int) -> torch.Tensor:
    """(B, F) -> (B, parts, ceil(F / parts)), zero-padding the tail."""
    chunk = math.ceil(x.shape[-1] / parts)
    x = F.pad(x, (0, chunk * parts - x.shape[-1]))
    return x.view(x.shape[0], parts, chunk)


class PositionwiseProjection(nn.Module):
    """(B, F) -> (B, parts, D): split into ``parts`` sub-vectors, each with its own linear map.

    Sub-vectors hold different features, so each position gets its own weights (a shared map
    would mix unrelated features into one embedding space and blur per-patient quality).
    """

    def __init__(self, in_dim: int, parts: int, dim: int) -> None:
        super().__init__()
        self.parts = parts
        chunk = math.ceil(in_dim / parts)
        self.weight = nn.Parameter(torch.empty(parts, chunk, dim))
        self.bias = nn.Parameter(torch.zeros(parts, dim))
        bound = 1.0 / math.sqrt(chunk)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = _pad_split(x, self.parts)  # (B, parts, chunk)
        return torch.einsum("bpc,pcd->bpd", chunks, self.weight.to(chunks.dtype)) + self.bias


class VectorTokenizer(nn.Module):
    """(B, F) -> (B, N, D): split into N sub-vectors, project each, add positions."""

    def __init__(self, in_dim: int, tokens: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = PositionwiseProjection(in_dim, tokens, dim)
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(x) + self.pos)


class QueryTokenEncoder(nn.Module):
    """N learned query tokens cross-attend to a set of input tokens (one transformer layer).

    Input (B, F) is projected and split into ``sub_vectors`` tokens; input (B, P, F) is a bag whose
    P items are projected to D (``mask`` (B, P) True marks real items). Output (B, N, D).
    """

    def __init__(
        self,
        in_dim: int,
        tokens: int,
        dim: int,
        heads: int,
        sub_vectors: int | None = None,
        bag: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.bag = bag
        self.sub_vectors = sub_vectors or tokens
        # A vector is projected to the hidden size and split into sub-vectors (Appendix B.6),
        # i.e. one linear map per sub-vector; bag items share one map.
        self.proj = (
            nn.Linear(in_dim, dim) if bag else PositionwiseProjection(in_dim, self.sub_vectors, dim)
        )
        self.key_pos = None if bag else nn.Parameter(torch.randn(self.sub_vectors, dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.bag:
            kv = self.proj(x)  # (B, P, D)
        else:
            kv = self.proj(x) + self.key_pos
        q = self.norm_q(self.queries).expand(x.shape[0], -1, -1)
        pad = None
        if mask is not None:
            # A sample with an empty bag attends to all (zero) items instead of producing NaNs.
            pad = ~mask.bool() & mask.bool().any(dim=1, keepdim=True)
        h, _ = self.cross(
            q, self.norm_kv(kv), self.norm_kv(kv), key_padding_mask=pad, need_weights=False
        )
        h = self.queries + h
        h = h + self.ff(self.norm_ff(h))
        return h + self.pos


class VolumeEncoder(nn.Module):
    """3D CNN with batch-norm: (B, 1, X, Y, Z) -> (B, N, D).

    Conv-BN-ReLU-pool stages, global average pooling, then a linear layer to N*D split into N
    tokens plus positions (Appendix B.6, ADNI).
    """

    def __init__(
        self, tokens: int, dim: int, channels: tuple[int, ...] = (8, 16, 32), dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [
                nn.Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm3d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool3d(2),
            ]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        self.tokens, self.dim = tokens, dim
        self.proj = nn.Linear(c_in, tokens * dim)
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """``present`` (B,) bool: only these subjects enter the CNN, so batch-norm statistics
        never see the zero-filled volumes of absent subjects (their pooled features are 0)."""
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if present is None or bool(present.all()):
            h = self.cnn(x).mean(dim=(2, 3, 4))  # (B, C)
        else:
            rows = present.nonzero().squeeze(1)
            if len(rows) > 0:
                found = self.cnn(x[rows]).mean(dim=(2, 3, 4))
            else:
                found = x.new_zeros(0, self.proj.in_features)
            h = found.new_zeros(x.shape[0], found.shape[1]).index_copy(0, rows, found)
        return self.dropout(self.proj(h).view(-1, self.tokens, self.dim) + self.pos)


class ModalityTransformer(nn.Module):
    """``layers`` vanilla pre-norm transformer layers for one modality: (B, N, D) -> (B, N, D).

    Each layer is ``x + Drop(Attn(LN(x)))`` then ``x + Drop(W2 GELU(W1 LN(x)))``: dropout on the
    two residual branches only. The parameters live in ``nn.TransformerEncoderLayer`` modules (same
    initialisation and state-dict keys as before), but :func:`encoder_layer` runs them: without
    dropout on the attention probabilities the attention is one fused
    ``scaled_dot_product_attention`` call, and the residual dropout uses the cheap CPU mask.
    """

    def __init__(self, dim: int, heads: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = dropout
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                heads,
                dim_feedforward=2 * dim,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = encoder_layer(layer, x, self.dropout, self.training)
        return x


def encoder_layer(
    layer: nn.TransformerEncoderLayer, x: torch.Tensor, p: float, training: bool
) -> torch.Tensor:
    """One pre-norm GELU layer with ``layer``'s weights, residual dropout ``p``: (B, N, D).

    Equals ``layer(x)`` (``norm_first=True``, ``batch_first=True``) when no dropout is active.
    """
    b, n, dim = x.shape
    attn = layer.self_attn
    heads = attn.num_heads
    qkv = F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(b, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d) each
    h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, dim)
    x = x + dropout(attn.out_proj(h), p, training)
    h = layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))
    return x + dropout(h, p, training)
