"""Self-attention modules that also return the head-averaged attention map A.

No dropout on the attention probabilities: the map is what AMC reads token scores from, and
dropout is applied to the block's residual branches instead (it is also the costliest op on CPU).

Both take ``x`` of shape (B, N, D) and return ``(out (B, N, D), attn (B, N, N))``; attention is
bidirectional (no causal mask). The map is what AMC scores tokens with (eq. 3, 6); it carries no
gradient (token scores never do) and is skipped with ``need_map=False``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last dimension (Zhang & Sennrich, 2019)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (x.float() * rms).type_as(x) * self.weight


class DifferentialAttention(nn.Module):
    """Multi-head differential attention (paper Appendix A.2; Ye et al., 2024).

    Per head i with head dim d = D / (2h): ``[Q1; Q2] = x W_i^Q``, ``[K1; K2] = x W_i^K``,
    ``V = x W_i^V`` (2d wide),
    ``A_i = softmax(Q1 K1^T / sqrt(d)) - lambda softmax(Q2 K2^T / sqrt(d))``,
    ``head_i = (1 - lambda_init) * RMSNorm(A_i V)``; heads are concatenated and projected by W^O.
    ``lambda = exp(lq1 . lk1) - exp(lq2 . lk2) + lambda_init`` is shared across heads of a layer.
    The returned map is the mean of the A_i over heads, shape (B, N, N); rows can hold negative
    entries and sum to ``1 - lambda``.
    """

    # Fused kernels or materialised maps; None: fused on CUDA only (at head dim D / 2h the
    # materialised maps are faster on CPU).
    use_fused: bool | None = None

    def __init__(self, dim: int, heads: int, lambda_init: float = 0.1):
        super().__init__()
        if dim % (2 * heads) != 0:
            raise ValueError(f"hidden={dim} must be divisible by 2*heads={2 * heads}")
        if not 0.0 < lambda_init < 1.0:
            raise ValueError(f"lambda_init={lambda_init} must lie in (0, 1)")
        self.heads = heads
        self.head_dim = dim // (2 * heads)
        self.lambda_init = lambda_init
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.lambda_q1 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_k1 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_q2 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.lambda_k2 = nn.Parameter(torch.randn(self.head_dim) * 0.1)
        self.head_norm = RMSNorm(2 * self.head_dim)

    def lambda_value(self) -> torch.Tensor:
        """The re-parameterised scalar lambda (eq. 12)."""
        return (
            torch.exp(torch.dot(self.lambda_q1, self.lambda_k1))
            - torch.exp(torch.dot(self.lambda_q2, self.lambda_k2))
            + self.lambda_init
        )

    def forward(
        self, x: torch.Tensor, need_map: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, N, D) -> (out (B, N, D), head-averaged map (B, N, N) or None).

        The map carries no gradient (token scores never do); ``need_map=False`` skips it.
        """
        b, n, dim = x.shape
        h, d = self.heads, self.head_dim
        # (B, N, 2h, d) -> (B, 2h, N, d); pairs (2i, 2i+1) are head i's two query/key groups.
        q = self.q_proj(x).view(b, n, 2 * h, d).transpose(1, 2)
        k = self.k_proj(x).view(b, n, 2 * h, d).transpose(1, 2)
        v = self.v_proj(x).view(b, n, h, 2 * d).transpose(1, 2)  # (B, h, N, 2d)
        # A_i V = softmax_1 V - lambda softmax_2 V: both query/key groups of a head read its V,
        # and lambda combines the (N, 2d) group outputs, never the larger (N, N) maps.
        fused = x.device.type == "cuda" if self.use_fused is None else self.use_fused
        if fused:
            v = v.unsqueeze(2).expand(b, h, 2, n, 2 * d).reshape(b, 2 * h, n, 2 * d)
            groups, probs = self._fused(q, k, v, need_map)
        else:
            groups, probs = self._explicit(q, k, v)
        lam = self.lambda_value()
        first, second = groups.view(b, h, 2, n, 2 * d).unbind(dim=2)
        heads = (1.0 - self.lambda_init) * self.head_norm(first - lam.to(second.dtype) * second)
        out = self.out_proj(heads.transpose(1, 2).reshape(b, n, dim))  # heads: (B, h, N, 2d)
        if not need_map or probs is None:
            return out, None
        with torch.no_grad():
            # mean over heads of (P_1 - lambda P_2) = mean P_1 - lambda mean P_2
            mean = probs.view(b, h, 2, n, n).float().mean(dim=1)
            return out, mean[:, 0] - lam * mean[:, 1]

    @staticmethod
    def _explicit(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Materialised softmax maps (fastest on CPU at AMC's head sizes).

        (B, 2h, N, d) queries / keys, (B, h, N, 2d) values (one per head) -> group outputs
        (B, 2h, N, 2d) and the maps (B, 2h, N, N).
        """
        b, groups, n, d = q.shape
        # Scaling the (N, d) queries is cheaper than scaling the (N, N) logits.
        probs = ((q * d**-0.5) @ k.transpose(-1, -2)).float().softmax(dim=-1)
        # A head's two maps stacked as (2N, N) rows read its V in one product: no copy of V per
        # group, and larger matrices per batched product.
        out = probs.type_as(v).view(b, groups // 2, 2 * n, n) @ v  # (B, h, 2N, 2d)
        return out.view(b, groups, n, v.shape[-1]), probs

    @staticmethod
    def _fused(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, need_map: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fused ``scaled_dot_product_attention`` (flash on GPU) carries the gradient; the maps
        (B, 2h, N, N), needed only for token scores, are recomputed without gradient."""
        out = F.scaled_dot_product_attention(q, k, v)
        if not need_map:
            return out, None
        with torch.no_grad():
            d = q.shape[-1]
            return out, ((q * d**-0.5) @ k.transpose(-1, -2)).float().softmax(dim=-1)


class VanillaAttention(nn.Module):
    """Standard multi-head softmax self-attention with the same interface (ablation)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"hidden={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(
        self, x: torch.Tensor, need_map: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, N, D) -> (out (B, N, D), head-averaged map (B, N, N), no gradient, or None)."""
        b, n, dim = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if not need_map:
            out = F.scaled_dot_product_attention(q, k, v)
            return self.out_proj(out.transpose(1, 2).reshape(b, n, dim)), None
        attn = (q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)).float().softmax(dim=-1)
        out = self.out_proj((attn.type_as(v) @ v).transpose(1, 2).reshape(b, n, dim))
        with torch.no_grad():
            return out, attn.mean(dim=1)


def build_attention(kind: str, dim: int, heads: int, lambda_init: float = 0.1):
    """``differential`` (default) or ``vanilla``."""
    if kind == "differential":
        return DifferentialAttention(dim, heads, lambda_init=lambda_init)
    if kind == "vanilla":
        return VanillaAttention(dim, heads)
    raise ValueError(f"model.attention={kind!r} is not one of differential, vanilla")


__all__ = ["DifferentialAttention", "VanillaAttention", "RMSNorm", "build_attention"]
