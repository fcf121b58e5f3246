"""The AMC network (paper section 4).

encoder per modality -> ``encoder_layers`` vanilla layers per modality -> ``layers`` improved
blocks on the modalities stacked along the batch axis (attention within a modality, O(M N^2))
-> AMC token fusion between adjacent blocks from the block's own map -> mean-pool each modality,
(optionally weight each by the importance that drove fusion, ``pooling="importance"``, or by its
deficit weights min(1, s M_present), ``pooling="deficit"``) -> concatenate (B, M*D) -> head;
or (``pooling="importance_logits"``) one head per modality on its pooled tokens, their
predictions mixed by that importance (late fusion inside AMC, after token fusion); or
(``pooling="deficit_logits"``) the same heads mixed by the importance deficit (full weight at or
above the uniform share, 0 at importance 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from amc.config import HEADS_POOLINGS, POOLINGS
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
    deficit_weights,
    importance_late_fusion,
    importance_pooling,
    modality_importance,
    replace_uninformative_tokens,
    replacement_counts,
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
    replace_rule: Literal["complement", "paper", "deficit"] = "complement"
    pooling: Literal["concat", "importance", "deficit", "importance_logits", "deficit_logits"] = (
        "concat"
    )
    temperature: float = 0.1
    token_pairs: Literal["all", "ring"] = "all"
    encoders: dict[str, EncoderKind] = field(default_factory=dict)

    def encoder_kind(self, name: str) -> EncoderKind:
        if name in self.encoders:
            return self.encoders[name]
        return "volume" if isinstance(self.modalities[name], tuple | list) else "vector"


@dataclass
class FusionStep:
    """One token-fusion step, exactly as it decided (or, with ``applied`` False, would decide)
    the replacement: the scores, importance and counts are the ones the replacement used.

    ``block``: index of the improved block whose attention map was scored (fusion runs after it).
    """

    block: int
    token_scores: torch.Tensor  # (B, M, N) eta; 0 for absent modalities
    modality_importance: torch.Tensor  # (B, M) s; 0 for absent modalities
    replace_counts: torch.Tensor  # (B, M) int64 K from s (what replacement applies when applied)
    replaced_from: torch.Tensor  # (B, M, N) int64 donor index, -1 where kept
    applied: bool


@dataclass
class AMCOutput:
    """What :meth:`AMC.forward` returns.

    ``modality_importance`` / ``token_scores`` / ``replaced_from`` are the LAST fusion step's:
    the s and eta that decided that step's replacement and its donors, so the K recomputed from
    ``modality_importance`` equals ``(replaced_from >= 0).sum(-1)`` whenever fusion ran.
    ``steps`` holds every fusion step (``layers - 1`` of them; one scoring-only step for a
    one-block model). ``agreement`` is the cross-modal alignment importance (the estimator of
    ``fusion.importance=alignment``), computed whatever estimator drives fusion.
    """

    logits: torch.Tensor  # (B, C) or (B, T)
    modality_importance: torch.Tensor  # (B, M)
    token_scores: torch.Tensor  # (B, M, N)
    replaced_from: torch.Tensor  # (B, M, N) int64
    aux_losses: dict[str, torch.Tensor]
    pooled: torch.Tensor  # (B, M, D)
    agreement: torch.Tensor | None = None  # (B, M)
    steps: list[FusionStep] = field(default_factory=list)
    # (B, M, C) or (B, M, T): each modality head's own logits (per-modality heads only)
    modality_logits: torch.Tensor | None = None
    # (B, M): the weights that mixed those heads, before renormalisation (per-modality heads only)
    head_weights: torch.Tensor | None = None


class AMC(nn.Module):
    """Adaptive Modality Token Re-balancing network."""

    def __init__(self, config: AMCConfig) -> None:
        super().__init__()
        self.config = c = config
        if not c.modalities:
            raise ValueError("AMCConfig.modalities is empty")
        if c.pooling not in POOLINGS:
            raise ValueError(f"fusion.pooling={c.pooling!r} is not one of {', '.join(POOLINGS)}")
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
        if c.task not in ("classification", "survival"):
            raise ValueError(f"task={c.task!r} is not one of classification, survival")
        if c.pooling in HEADS_POOLINGS:
            # One head per modality on its own pooled tokens (B, D), no shared head.
            self.modality_heads = nn.ModuleList(self._make_head(c.hidden) for _ in self.names)
        else:
            self.head = self._make_head(len(self.names) * c.hidden)

    def _make_head(self, in_dim: int) -> nn.Module:
        c = self.config
        if c.task == "classification":
            return ClassificationHead(in_dim, c.num_classes, c.dropout)
        return SurvivalHead(in_dim, c.num_bins, c.dropout)

    def encode(
        self, inputs: dict[str, ModalityInput], present: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Modality-specific encoders + vanilla layers: -> (B, M, N, D).

        ``present`` (B, M) bool, if given, keeps absent subjects out of the volume encoder's
        batch-norm statistics (their zero-filled volumes are not data).
        """
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing}; expected {self.names}")
        tokens = []
        for m, name in enumerate(self.names):
            value, encoder = inputs[name], self.encoders[name]
            if isinstance(encoder, VolumeEncoder):
                mask = None if present is None else present[:, m].to(value.device)
                x = encoder(value, mask)
            elif isinstance(value, tuple):
                x = encoder(*value)
            else:
                x = encoder(value)
            tokens.append(self.modality_layers[name](x))
        return torch.stack(tokens, dim=1)

    def _fusion_step(
        self,
        x: torch.Tensor,
        attn: torch.Tensor | None,
        present: torch.Tensor,
        agreement: torch.Tensor,
        block: int,
        apply: bool,
    ) -> tuple[torch.Tensor, FusionStep]:
        """Score block ``block``'s map (None with the linear scorer), set importance and K, and
        replace tokens if ``apply``."""
        c = self.config
        b, m, n, _ = x.shape
        scores = token_scores(attn) if self.scorer is None else self.scorer(x)
        # Absent modalities hold no data: their (zero-input) tokens score 0, not ~1/N.
        scores = scores * present.unsqueeze(-1).to(scores.dtype)
        if c.importance == "alignment":
            importance = agreement
        else:
            importance = modality_importance(scores, present, c.importance)
        counts = replacement_counts(importance.detach().float(), present, n, c.replace_rule)
        replaced_from = torch.full((b, m, n), -1, dtype=torch.long, device=x.device)
        if apply:
            if self.scorer is not None:
                x = x * scores.unsqueeze(-1).to(x.dtype)  # gives the linear scorer its gradient
            x, replaced_from = replace_uninformative_tokens(
                x, scores, importance, present, c.replace_rule
            )
        step = FusionStep(block, scores, importance, counts, replaced_from, apply)
        return x, step

    def _modality_heads(
        self, pooled: torch.Tensor, importance: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One head per modality, mixed per patient: (B, M, D), (B, M), (B, M) -> fused logits
        (B, K), each head's logits (B, M, K), the mixing weights (B, M) (the importance, or its
        deficit weights for ``pooling="deficit_logits"``; detached)."""
        modality_logits = torch.stack(
            [head(pooled[:, i]) for i, head in enumerate(self.modality_heads)], dim=1
        )
        weights = importance.detach()
        if self.config.pooling == "deficit_logits":
            weights = deficit_weights(weights, present)
        logits = importance_late_fusion(modality_logits, weights, present, self.config.task)
        return logits, modality_logits, weights

    def _weigh_pooled(
        self, pooled: torch.Tensor, importance: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """The shared head's input per modality: (B, M, D), (B, M), (B, M) -> (B, M, D)."""
        if self.config.pooling == "importance":
            return importance_pooling(pooled, importance, present)
        if self.config.pooling == "deficit":
            # concat for a patient whose modalities all hold their uniform share; a flagged
            # modality is scaled toward 0 (the oracle's drop), the others stay unchanged.
            weights = deficit_weights(importance, present)
            return pooled * weights.to(pooled.dtype).unsqueeze(-1)
        return pooled

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
        aux: bool | None = None,
    ) -> AMCOutput:
        """Run the network.

        Args:
            inputs: name -> (B, F) vector, (B, 1, X, Y, Z) volume, or (bag (B, P, F), mask (B, P)).
                Absent modalities may hold anything (zeros); ``present`` masks them out.
            present: (B, M) bool, True where the modality exists (default: all present).
            fuse: apply token fusion (False during the warm-up epochs).
            aux: compute the contrastive losses L_I / L_T (default: only in training mode, so
                evaluation does not pay for them); ``aux_losses`` then lacks ``instance`` and
                ``token``. The SMoE ``balance`` term is always returned (it is free).
        """
        c = self.config
        first = next(iter(inputs.values()))
        b = (first[0] if isinstance(first, tuple) else first).shape[0]
        m = len(self.names)
        device = next(self.parameters()).device
        if present is None:
            present = torch.ones(b, m, dtype=torch.bool, device=device)
        present = present.to(device=device, dtype=torch.bool)
        x = self.encode(inputs, present)  # (B, M, N, D)
        n, d = x.shape[2:]
        x = x * present.view(b, m, 1, 1).to(x.dtype)
        losses: dict[str, torch.Tensor] = {}
        if self.training if aux is None else aux:
            losses["instance"] = instance_contrastive_loss(x, present, c.temperature)
            losses["token"] = token_contrastive_loss(x, present, c.temperature, c.token_pairs)
        # Always exported; it drives fusion only with fusion.importance=alignment.
        agreement = alignment_importance(x, present)
        balance = x.new_zeros((), dtype=torch.float32)
        steps: list[FusionStep] = []
        # Fusion runs between adjacent blocks; a one-block model is scored after its block.
        last_step = max(len(self.blocks) - 2, 0)
        for index, block in enumerate(self.blocks):
            # Only a scored block's map is read (and only by the attention scorer): skip the rest.
            scored = index <= last_step
            out, attn, bal = block(x.reshape(b * m, n, d), need_map=scored and self.scorer is None)
            x = out.view(b, m, n, d)
            balance = balance + bal.float()
            if scored:
                apply = c.fusion and fuse and index < len(self.blocks) - 1
                attn = None if attn is None else attn.view(b, m, n, n)
                x, step = self._fusion_step(x, attn, present, agreement, index, apply)
                steps.append(step)
        losses["balance"] = balance / max(len(self.blocks), 1)
        fused = any(step.applied for step in steps)
        pooled = self.norm(x).mean(dim=2)  # (B, M, D)
        if not fused:
            # Without fusion nothing imputed the absent modalities: keep them out of the head.
            pooled = pooled * present.view(b, m, 1).to(pooled.dtype)
        final = steps[-1]
        modality_logits = head_weights = None
        if c.pooling in HEADS_POOLINGS:
            logits, modality_logits, head_weights = self._modality_heads(
                pooled, final.modality_importance, present
            )
        else:
            pooled = self._weigh_pooled(pooled, final.modality_importance, present)
            logits = self.head(pooled.reshape(b, m * d))
        return AMCOutput(
            logits=logits,
            modality_importance=final.modality_importance,
            token_scores=final.token_scores,
            replaced_from=final.replaced_from,
            aux_losses=losses,
            pooled=pooled,
            agreement=agreement,
            steps=steps,
            modality_logits=modality_logits,
            head_weights=head_weights,
        )
