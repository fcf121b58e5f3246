"""LiMoE: one sparse mixture-of-experts transformer over all modalities (Mustafa et al.,
NeurIPS 2022).

Follows section 2: a single tower processes the tokens of every modality in one sequence; its
feed-forward layers are top-k sparse MoE layers shared by all modalities; training adds, per
modality m, the local entropy loss (eq. 2)
    Omega_local(G_m) = 1/n_m sum_i H(p_m(experts | x_i))     (confident routing per token)
and the thresholded global entropy loss (eq. 3 with threshold tau)
    Omega_global(G_m) = max(0, tau - H(1/n_m sum_i p_m(experts | x_i)))   (use many experts),
next to the usual load-balancing loss (reported as ``balance``).

Simplifications: AMC's encoders replace the per-modality patch / word embeddings, plus a learned
modality-type embedding; the contrastive image-text objective is replaced by the task head on the
mean of all present tokens; every layer's feed-forward is an MoE (the paper alternates dense
and MoE layers); the entropy losses are averaged over modalities and MoE layers and
weighted by the options (no per-modality tau). Absent modalities contribute no tokens: they are
masked out of attention, skip the MoE layers and the pooling.
"""

from __future__ import annotations

import math

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
from amc.model.moe import SparseMoE
from amc.model.network import AMCConfig, ModalityInput


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last axis."""
    return -(p * p.clamp_min(1e-12).log()).sum(dim=-1)


def limoe_entropy_losses(
    probs: torch.Tensor, modality: torch.Tensor, num_modalities: int, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local and thresholded global entropy losses, averaged over the modalities that have tokens.

    Args:
        probs: (T, E) router probabilities of the T routed tokens.
        modality: (T,) modality index of each token.
        threshold: tau of the global loss.
    """
    local, global_ = [], []
    for m in range(num_modalities):
        p = probs[modality == m]
        if p.shape[0] == 0:
            continue
        local.append(entropy(p).mean())
        global_.append((threshold - entropy(p.mean(dim=0))).clamp_min(0.0))
    if not local:
        zero = probs.new_zeros(())
        return zero, zero
    return torch.stack(local).mean(), torch.stack(global_).mean()


class LiMoELayer(nn.Module):
    """Self-attention over all tokens + sparse MoE on the valid ones: (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, heads: int, experts: int, top_k: int, dropout: float) -> None:
        super().__init__()
        self.attn = FusionAttentionLayer(dim, heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.moe = SparseMoE(dim, experts, top_k)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, padding: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns the new x, the load-balancing loss and (T_valid, E) router probabilities."""
        x = self.attn(x, padding)
        if not valid.any():  # no modality in the whole batch: nothing to route
            zero = x.new_zeros((), dtype=torch.float32)
            return x, zero, x.new_zeros(0, self.moe.num_experts, dtype=torch.float32)
        h = self.norm(x[valid])  # (T_valid, D): absent tokens are never routed
        out, balance = self.moe(h)
        probs = self.moe.gate(h).float().softmax(dim=-1)
        return add_on_valid(x, valid, out, self.dropout), balance, probs


class LiMoE(nn.Module):
    """Options: ``experts`` / ``top_k`` / ``layers`` (model values); ``local_weight`` (0.1),
    ``global_weight`` (0.1): coefficients of the entropy losses; ``threshold`` (None = log E,
    i.e. ask for a uniform use of all experts)."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        defaults = {
            "experts": config.experts,
            "top_k": config.top_k,
            "layers": config.layers,
            "local_weight": 0.1,
            "global_weight": 0.1,
            "threshold": None,
        }
        self.opts = opts = resolve_options("limoe", options, defaults)
        c = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        experts = int(opts["experts"])
        self.threshold = (
            math.log(experts) if opts["threshold"] is None else float(opts["threshold"])
        )
        self.type_embedding = nn.Parameter(torch.randn(len(self.names), c.hidden) * 0.02)
        self.layers = nn.ModuleList(
            LiMoELayer(c.hidden, c.heads, experts, int(opts["top_k"]), c.dropout)
            for _ in range(int(opts["layers"]))
        )
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
        x, valid, padding, modality, m = seq.x, seq.valid, seq.padding, seq.modality, seq.shape[1]
        balance, local, global_ = [], [], []
        for layer in self.layers:
            x, bal, probs = layer(x, padding, valid)
            lo, gl = limoe_entropy_losses(probs, modality, m, self.threshold)
            balance.append(bal.float())
            local.append(lo)
            global_.append(gl)
        pooled = masked_mean(self.norm(x), valid, dim=1)  # (B, D)
        aux = {}
        if self.layers:
            aux = {
                "balance": torch.stack(balance).mean(),
                "limoe_local": self.opts["local_weight"] * torch.stack(local).mean(),
                "limoe_global": self.opts["global_weight"] * torch.stack(global_).mean(),
            }
        return BaselineOutput(logits=self.head(pooled), aux_losses=aux)
