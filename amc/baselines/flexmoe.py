"""Flex-MoE: arbitrary modality combinations via a flexible mixture of experts (Yun et al.,
NeurIPS 2024).

Follows section 3:
- Missing-modality bank: a learned table of token embeddings indexed by (observed modality
  combination, modality); an absent modality m of a patient whose observed set is S is filled with
  bank[S, m] (N tokens), so a missing modality is imputed from what the combination says about it
  and never from the absent input.
- Sparse MoE with one expert per modality combination (2^M - 1 by default) and
  generalised-then-specialised routing: on patients with every modality the router is trained to
  spread tokens over all experts (G-router, load balancing: generalised knowledge in every expert);
  on patients with a partial combination it is trained to send their tokens to the expert of
  their combination (S-router, cross-entropy to the combination's expert index), so each expert
  specialises in one combination. The routing weights are the top-k softmax of the router.
- Self-attention over the tokens of all modalities (observed and filled), then the MoE feed-
  forward per token; per-modality mean pooling, concatenated, then the head.

Simplifications: the paper's curriculum (full-modality samples first during warm-up epochs, then
all samples) is replaced by applying both routing objectives from the first step (one training
loop for every method); the noisy top-k gate and its cv^2 losses are replaced by a plain top-k
softmax gate and the load-balancing loss of ``amc.model.moe``. The router losses are weighted by
the option ``router_weight`` and reported as ``flexmoe_router``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from amc.baselines.common import (
    BaselineOutput,
    FusionAttentionLayer,
    ModalityEncoders,
    make_head,
    resolve_options,
    resolve_present,
)
from amc.model.moe import SparseMoE, load_balancing_loss
from amc.model.network import AMCConfig, ModalityInput


def combinations(num_modalities: int) -> list[tuple[int, ...]]:
    """Every non-empty modality combination; index 0 is the full set, then by size, descending."""
    combos = []
    for size in range(num_modalities, 0, -1):
        combos.extend(itertools.combinations(range(num_modalities), size))
    return combos


def combination_lookup(num_modalities: int) -> torch.Tensor:
    """(2^M,) int64: bitmask of observed modalities (bit m = modality m) -> combination index.

    The empty set (no modality observed) maps to the full set's index 0.
    """
    table = torch.zeros(2**num_modalities, dtype=torch.long)
    for index, combo in enumerate(combinations(num_modalities)):
        table[sum(1 << m for m in combo)] = index
    return table


class FlexMoE(nn.Module):
    """Options: ``experts`` (None = one per combination, 2^M - 1; at least that many),
    ``top_k`` (model top_k), ``layers`` (1), ``router_weight`` (0.01)."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        defaults = {"experts": None, "top_k": config.top_k, "layers": 1, "router_weight": 0.01}
        self.opts = opts = resolve_options("flexmoe", options, defaults)
        c = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        m = len(self.names)
        combos = len(combinations(m))
        experts = combos if opts["experts"] is None else int(opts["experts"])
        if experts < combos:
            raise ValueError(
                f"flexmoe experts={experts} is below the {combos} modality combinations of "
                f"{m} modalities: every combination needs its own expert"
            )
        self.register_buffer("lookup", combination_lookup(m), persistent=False)
        self.register_buffer("bits", 2 ** torch.arange(m), persistent=False)
        self.bank = nn.Parameter(torch.randn(combos, m, c.tokens, c.hidden) * 0.02)
        self.attn = nn.ModuleList(
            FusionAttentionLayer(c.hidden, c.heads, c.dropout) for _ in range(int(opts["layers"]))
        )
        self.norms = nn.ModuleList(nn.LayerNorm(c.hidden) for _ in self.attn)
        self.moes = nn.ModuleList(
            SparseMoE(c.hidden, experts, int(opts["top_k"])) for _ in self.attn
        )
        self.dropout = nn.Dropout(c.dropout)
        self.norm = nn.LayerNorm(c.hidden)
        self.head = make_head(config, m * c.hidden)

    def combination_index(self, present: torch.Tensor) -> torch.Tensor:
        """(B, M) bool -> (B,) index of each patient's observed combination (= its expert)."""
        return self.lookup[(present.long() * self.bits).sum(dim=1)]

    def fill_missing(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Absent modalities' tokens (B, M, N, D) replaced by bank[combination, modality]."""
        filled = self.bank[self.combination_index(present)].to(tokens.dtype)  # (B, M, N, D)
        keep = present.view(*present.shape, 1, 1)
        return torch.where(keep, tokens, filled)

    def router_loss(self, moe: SparseMoE, h: torch.Tensor, combo: torch.Tensor) -> torch.Tensor:
        """G-router balance on full-combination tokens + S-router CE on the others.

        h: (B, L, D) tokens entering the MoE; combo: (B,) combination index.
        """
        logits = moe.gate(h).float()  # (B, L, E)
        full = combo == 0
        loss = logits.new_zeros(())
        if full.any():
            probs = logits[full].flatten(0, 1).softmax(dim=-1)
            loss = loss + load_balancing_loss(probs, probs.topk(moe.top_k, dim=-1).indices)
        if (~full).any():
            target = combo[~full, None].expand(-1, logits.shape[1])
            loss = loss + F.cross_entropy(logits[~full].flatten(0, 1), target.flatten())
        return loss

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        tokens = self.fill_missing(self.encoders(inputs, present), present)
        b, m, n, d = tokens.shape
        combo = self.combination_index(present)
        x = tokens.reshape(b, m * n, d)
        router = []
        for attn, norm, moe in zip(self.attn, self.norms, self.moes, strict=True):
            x = attn(x)
            h = norm(x)
            out, _ = moe(h)
            x = x + self.dropout(out)
            router.append(self.router_loss(moe, h, combo))
        pooled = self.norm(x).view(b, m, n, d).mean(dim=2)  # (B, M, D)
        aux = {}
        if router:
            aux["flexmoe_router"] = self.opts["router_weight"] * torch.stack(router).mean()
        return BaselineOutput(logits=self.head(pooled.reshape(b, m * d)), aux_losses=aux)
