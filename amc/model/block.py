"""The improved transformer block: differential attention + sparse MoE, pre-norm, residual."""

from __future__ import annotations

import torch
from torch import nn

from amc.model.attention import build_attention
from amc.model.dropout import Dropout
from amc.model.moe import DenseFFN, SparseMoE


class ImprovedBlock(nn.Module):
    """(B', N, D) -> (out (B', N, D), attention map (B', N, N) or None, balance loss scalar).

    ``attention``: ``differential`` | ``vanilla``; ``ffn``: ``smoe`` | ``dense``. The map carries
    no gradient; ``need_map=False`` skips computing it (then it is None).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        attention: str = "differential",
        ffn: str = "smoe",
        experts: int = 8,
        top_k: int = 2,
        lambda_init: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = build_attention(attention, dim, heads, lambda_init)
        self.norm_ffn = nn.LayerNorm(dim)
        if ffn == "smoe":
            self.ffn: nn.Module = SparseMoE(dim, experts=experts, top_k=top_k)
        elif ffn == "dense":
            self.ffn = DenseFFN(dim)
        else:
            raise ValueError(f"model.ffn={ffn!r} is not one of smoe, dense")
        # Residual dropout only (none inside attention or experts), with the cheap CPU mask.
        self.dropout = Dropout(dropout)

    def forward(
        self, x: torch.Tensor, need_map: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        h, attn = self.attn(self.norm_attn(x), need_map=need_map)
        x = x + self.dropout(h)
        h, balance = self.ffn(self.norm_ffn(x))
        return x + self.dropout(h), attn, balance
