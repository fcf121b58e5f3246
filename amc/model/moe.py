"""Feed-forward layers of the improved block: sparse mixture of experts, and the dense ablation.

Both map (B, N, D) -> (B, N, D) and return a load-balancing loss (0 for the dense layer).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    # Dropout is applied once to the layer's output by the block, not inside every expert.
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


def load_balancing_loss(gate_probs: torch.Tensor, expert_index: torch.Tensor) -> torch.Tensor:
    """Switch/Shazeer load-balancing loss ``E * sum_e f_e * P_e``.

    Args:
        gate_probs: (T, E) softmax router probabilities (carry the gradient).
        expert_index: (T, k) experts each token was dispatched to.

    ``f_e`` is the fraction of dispatches that went to expert e (no gradient) and ``P_e`` the mean
    router probability of e. The loss is 1 at perfectly uniform load and grows up to E as routing
    collapses onto one expert; its gradient pushes probability away from overloaded experts.
    """
    num_experts = gate_probs.shape[-1]
    counts = F.one_hot(expert_index, num_experts).sum(dim=(0, 1)).to(gate_probs.dtype)
    fraction = counts / counts.sum().clamp_min(1.0)
    mean_prob = gate_probs.mean(dim=0)
    return num_experts * (fraction * mean_prob).sum()


class SparseMoE(nn.Module):
    """Top-k sparse mixture of experts (paper Appendix A.3, eqs. 13-15).

    Router: one linear layer, softmax over experts, top-k kept and renormalised to sum to 1.
    Each expert is a 2-layer GELU MLP and only runs on the tokens routed to it.
    """

    def __init__(self, dim: int, experts: int = 8, top_k: int = 2, hidden_mult: int = 2) -> None:
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"model.top_k={top_k} must lie in [1, model.experts={experts}]")
        self.num_experts = experts
        self.top_k = top_k
        self.gate = nn.Linear(dim, experts, bias=False)
        self.experts = nn.ModuleList(_mlp(dim, hidden_mult * dim) for _ in range(experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # (T, D)
        probs = self.gate(tokens).float().softmax(dim=-1)  # (T, E)
        top_p, top_i = probs.topk(self.top_k, dim=-1)  # (T, k)
        weights = top_p / top_p.sum(dim=-1, keepdim=True)
        # Dispatch sorted by expert: one gather puts each expert's tokens in a contiguous run, one
        # index_add scatters the weighted outputs back; the run lengths are the only host sync.
        expert_of = top_i.reshape(-1)  # (T k,) dispatches, token-major
        order = expert_of.argsort(stable=True)
        token_of = order // self.top_k
        counts = torch.bincount(expert_of, minlength=self.num_experts).tolist()
        runs = tokens.index_select(0, token_of).split(counts)
        y = torch.cat([expert(run) for expert, run in zip(self.experts, runs, strict=True)])
        y = y * weights.reshape(-1)[order].unsqueeze(-1).to(y.dtype)
        out = torch.zeros_like(tokens).index_add_(0, token_of, y.to(tokens.dtype))
        return out.view(shape), load_balancing_loss(probs, top_i)


class DenseFFN(nn.Module):
    """The dense MLP of a standard transformer block (ablation ``model.ffn=dense``)."""

    def __init__(self, dim: int, hidden_mult: int = 2) -> None:
        super().__init__()
        self.mlp = _mlp(dim, hidden_mult * dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(x), x.new_zeros(())
