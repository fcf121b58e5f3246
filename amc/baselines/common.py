"""What every compared method shares with AMC: the per-modality encoders, the task heads, the
output object, the present mask and the handling of method options.

Only the fusion differs between methods: each builds its encoders with :class:`ModalityEncoders`
(the same modules, in the same way, as :class:`amc.model.AMC`) and its head with :func:`make_head`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from amc.model.encoders import (
    ModalityTransformer,
    QueryTokenEncoder,
    VectorTokenizer,
    VolumeEncoder,
)
from amc.model.heads import ClassificationHead, SurvivalHead
from amc.model.network import AMCConfig, ModalityInput


@dataclass
class BaselineOutput:
    """What a compared method returns: the fields of AMC's output that it can fill.

    ``modality_importance``, ``token_scores`` and ``replaced_from`` are AMC's interpretability
    outputs; the compared methods have none, so they stay ``None``.
    """

    logits: torch.Tensor  # (B, C) class logits or (B, T) hazard logits
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    modality_importance: torch.Tensor | None = None
    token_scores: torch.Tensor | None = None
    replaced_from: torch.Tensor | None = None


def resolve_options(method: str, options: dict[str, Any] | None, defaults: dict[str, Any]) -> dict:
    """``defaults`` overridden by ``options``; an unknown key is an error naming the method."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"method {method!r} has no option(s) {unknown}; its options are {sorted(defaults)}"
        )
    return {**defaults, **options}


def build_encoder(name: str, config: AMCConfig) -> nn.Module:
    """AMC's modality-specific encoder for ``name``: input -> (B, N, D) tokens."""
    c = config
    kind = c.encoder_kind(name)
    size = c.modalities[name]
    if kind == "vector":
        return VectorTokenizer(int(size), c.tokens, c.hidden, c.dropout)
    if kind in ("query", "bag"):
        return QueryTokenEncoder(
            int(size), c.tokens, c.hidden, c.heads, bag=kind == "bag", dropout=c.dropout
        )
    if kind == "volume":
        return VolumeEncoder(c.tokens, c.hidden, dropout=c.dropout)
    raise ValueError(f"unknown encoder {kind!r} for modality {name!r}")


class ModalityEncoders(nn.Module):
    """Per-modality encoder (+ AMC's vanilla per-modality layers): inputs -> (B, M, N, D).

    Tokens of absent modalities are zeroed, so an absent input's values never reach the fusion.
    ``layers=False`` skips the per-modality transformer layers (early fusion).
    """

    def __init__(
        self, config: AMCConfig, names: list[str] | None = None, layers: bool = True
    ) -> None:
        super().__init__()
        if not config.modalities:
            raise ValueError("AMCConfig.modalities is empty")
        self.names = list(names) if names is not None else list(config.modalities)
        self.encoders = nn.ModuleDict({n: build_encoder(n, config) for n in self.names})
        self.modality_layers = (
            nn.ModuleDict(
                {
                    n: ModalityTransformer(
                        config.hidden, config.heads, config.encoder_layers, config.dropout
                    )
                    for n in self.names
                }
            )
            if layers
            else None
        )

    def encode_one(self, name: str, value: ModalityInput) -> torch.Tensor:
        """One modality's tokens (B, N, D), not masked."""
        x = self.encoders[name](*value) if isinstance(value, tuple) else self.encoders[name](value)
        if self.modality_layers is not None:
            x = self.modality_layers[name](x)
        return x

    def forward(self, inputs: dict[str, ModalityInput], present: torch.Tensor) -> torch.Tensor:
        """(B, M, N, D) tokens; ``present`` (B, M) bool in the order of ``self.names``."""
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing}; expected {self.names}")
        x = torch.stack([self.encode_one(n, inputs[n]) for n in self.names], dim=1)
        return x * present.view(*present.shape, 1, 1).to(x.dtype)


def make_head(config: AMCConfig, in_dim: int) -> nn.Module:
    """AMC's task head on an (B, in_dim) vector: class logits or discrete-time hazard logits."""
    if config.task == "classification":
        return ClassificationHead(in_dim, config.num_classes, config.dropout)
    if config.task == "survival":
        return SurvivalHead(in_dim, config.num_bins, config.dropout)
    raise ValueError(f"task={config.task!r} is not one of classification, survival")


def batch_size(inputs: dict[str, ModalityInput]) -> int:
    value = next(iter(inputs.values()))
    return int((value[0] if isinstance(value, tuple) else value).shape[0])


def resolve_present(
    present: torch.Tensor | None, inputs: dict[str, ModalityInput], modalities: int
) -> torch.Tensor:
    """(B, M) bool mask on the inputs' device; all True when ``present`` is None."""
    value = next(iter(inputs.values()))
    device = (value[0] if isinstance(value, tuple) else value).device
    if present is None:
        return torch.ones(batch_size(inputs), modalities, dtype=torch.bool, device=device)
    if present.shape[-1] != modalities:
        raise ValueError(f"present has {present.shape[-1]} columns, expected {modalities}")
    return present.to(device=device, dtype=torch.bool)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` where ``mask`` (broadcastable to x without the feature axis) is
    True; 0 where nothing is selected (never NaN)."""
    weight = mask.to(x.dtype).unsqueeze(-1)
    return (x * weight).sum(dim) / weight.sum(dim).clamp_min(1.0)


def token_padding_mask(present: torch.Tensor, tokens: int) -> torch.Tensor:
    """(B, M) present -> (B, M*N) key padding mask (True = ignore) for attention over all tokens.

    A row with no modality at all attends to everything (zeros) instead of producing NaNs.
    """
    valid = present.repeat_interleave(tokens, dim=1)
    return ~valid & valid.any(dim=1, keepdim=True)


@dataclass
class TokenSequence:
    """Every modality's tokens as one sequence, for the methods that fuse over all tokens at once
    (LiMoE, FuseMoE): ``x`` (B, M*N, D), ``valid`` (B, M*N) tokens of present modalities,
    ``padding`` the attention key padding mask (:func:`token_padding_mask`), ``modality`` (V,)
    the modality index of each valid token (V = valid.sum()), ``shape`` (B, M, N, D)."""

    x: torch.Tensor
    valid: torch.Tensor
    padding: torch.Tensor
    modality: torch.Tensor
    shape: tuple[int, int, int, int]


def token_sequence(tokens: torch.Tensor, present: torch.Tensor) -> TokenSequence:
    """(B, M, N, D) tokens and the (B, M) present mask -> one :class:`TokenSequence`."""
    b, m, n, d = tokens.shape
    x = tokens.reshape(b, m * n, d)
    valid = present.repeat_interleave(n, dim=1)  # (B, M*N)
    padding = token_padding_mask(present, n)
    modality = torch.arange(m, device=x.device).repeat_interleave(n).expand(b, -1)[valid]
    return TokenSequence(x, valid, padding, modality, (b, m, n, d))


def add_on_valid(
    x: torch.Tensor, valid: torch.Tensor, out: torch.Tensor, dropout: nn.Module
) -> torch.Tensor:
    """Residual update of the valid tokens only: x (B, L, D), valid (B, L), out (V, D) the
    update of the V valid tokens (e.g. an MoE's output) -> x + dropout(out scattered back)."""
    delta = x.new_zeros(x.shape)
    delta[valid] = out.to(x.dtype)
    return x + dropout(delta)


class FusionAttentionLayer(nn.Module):
    """Pre-norm multi-head self-attention with a residual: (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        out, _ = self.attn(h, h, h, key_padding_mask=padding, need_weights=False)
        return x + self.dropout(out)
