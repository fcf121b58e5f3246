"""FuseMoE: mixture-of-experts transformer for fleximodal fusion (Han et al., NeurIPS 2024).

Follows sections 3-4: per-modality encoders produce tokens; an MoE fusion layer with a pool of
experts shared by all modalities and one router per modality (the paper's "per-modality router"
design) dispatches each token to its top-k experts with the Laplace gating function (eq. 4)
    G(x) = softmax(TopK(-||W - x||_2)),
i.e. the gate logit of expert e is minus the Euclidean distance between the token and the
expert's key W_e, instead of the dot-product softmax gate. Missing modalities are handled as the
paper's fleximodal layer does: a patient's absent modalities simply contribute no tokens (they
are masked out of attention, skip the MoE layer and the pooling), so any subset of modalities
is processed by the same layer.

Simplifications: AMC's encoders replace the irregular-time (mTAND) encoders; one fusion layer
(self-attention over all tokens, then the Laplace MoE) by default; the output is the mean of the
present modalities' pooled tokens; the load-balancing loss of ``amc.model.moe`` is computed from
the softmax of the Laplace logits (reported as ``balance``).
"""

from __future__ import annotations

import torch
from torch import nn

from amc.baselines.common import (
    BaselineOutput,
    FusionAttentionLayer,
    ModalityEncoders,
    add_on_valid,
    make_head,
    masked_mean,
    resolve_options,
    resolve_present,
    token_sequence,
)
from amc.model.moe import load_balancing_loss
from amc.model.network import AMCConfig, ModalityInput


class LaplaceRouter(nn.Module):
    """Laplace gate: (T, D) -> top-k weights (T, k), expert indices (T, k), probabilities (T, E)."""

    def __init__(self, dim: int, experts: int, top_k: int) -> None:
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"fusemoe top_k={top_k} must lie in [1, experts={experts}]")
        self.keys = nn.Parameter(torch.randn(experts, dim) / dim**0.5)
        self.top_k = top_k

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(T, D) -> (T, E): minus the L2 distance to each expert key."""
        return -torch.cdist(x.float(), self.keys.float())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.logits(x)
        top, index = logits.topk(self.top_k, dim=-1)
        return top.softmax(dim=-1), index, logits.softmax(dim=-1)


class LaplaceMoE(nn.Module):
    """Shared experts, one Laplace router per modality: tokens (T, D), modality (T,) -> (T, D)."""

    def __init__(self, dim: int, modalities: int, experts: int, top_k: int) -> None:
        super().__init__()
        self.routers = nn.ModuleList(LaplaceRouter(dim, experts, top_k) for _ in range(modalities))
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            for _ in range(experts)
        )

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = x.new_zeros(x.shape[0], len(self.experts), dtype=torch.float32)
        probs, picked = [], []
        for m, router in enumerate(self.routers):
            rows = (modality == m).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            w, index, p = router(x[rows])
            weights[rows.unsqueeze(-1), index] = w
            probs.append(p)
            picked.append(index)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            rows = (weights[:, e] > 0).nonzero(as_tuple=True)[0]
            if rows.numel():
                y = expert(x[rows]) * weights[rows, e, None].to(x.dtype)
                out = out.index_add(0, rows, y.to(out.dtype))
        if not probs:
            return out, x.new_zeros((), dtype=torch.float32)
        return out, load_balancing_loss(torch.cat(probs), torch.cat(picked))


class FuseMoE(nn.Module):
    """Options: ``experts`` / ``top_k`` (model values); ``layers`` (1): fusion layers."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        defaults = {"experts": config.experts, "top_k": config.top_k, "layers": 1}
        opts = resolve_options("fusemoe", options, defaults)
        c = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        m = len(self.names)
        self.type_embedding = nn.Parameter(torch.randn(m, c.hidden) * 0.02)
        layers = int(opts["layers"])
        self.attn = nn.ModuleList(
            FusionAttentionLayer(c.hidden, c.heads, c.dropout) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(c.hidden) for _ in range(layers))
        self.moes = nn.ModuleList(
            LaplaceMoE(c.hidden, m, int(opts["experts"]), int(opts["top_k"])) for _ in range(layers)
        )
        self.dropout = nn.Dropout(c.dropout)
        self.norm = nn.LayerNorm(c.hidden)
        self.head = make_head(config, c.hidden)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        tokens = self.encoders(inputs, present) + self.type_embedding[:, None]
        seq = token_sequence(tokens, present)
        x, valid, padding, modality = seq.x, seq.valid, seq.padding, seq.modality
        b, m, n, d = seq.shape
        balance = []
        for attn, norm, moe in zip(self.attn, self.norms, self.moes, strict=True):
            x = attn(x, padding)
            out, bal = moe(norm(x[valid]), modality)
            x = add_on_valid(x, valid, out, self.dropout)
            balance.append(bal.float())
        per_modality = masked_mean(self.norm(x).view(b, m, n, d), valid.view(b, m, n), dim=2)
        pooled = masked_mean(per_modality, present, dim=1)  # (B, D)
        aux = {"balance": torch.stack(balance).mean()} if balance else {}
        return BaselineOutput(logits=self.head(pooled), aux_losses=aux)
