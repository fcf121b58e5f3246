"""AMC's customized token fusion (paper eqs. 2-4), as plain tensor functions.

Shapes: B samples, M modalities, N tokens per modality, D hidden size. ``A`` is the
head-averaged attention map of one improved block, (B, M, N, N).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

ImportanceStat = Literal["mean", "std", "max"]
ReplaceRule = Literal["complement", "paper", "deficit"]

SIGMA_FLOOR = 1e-6  # differential maps can be negative; importance must stay a distribution


def token_scores(attn: torch.Tensor) -> torch.Tensor:
    """eta[b, m, n] = max_k A[b, m, n, k] (eq. 3). (B, M, N, N) -> (B, M, N)."""
    return attn.amax(dim=-1)


def modality_importance(
    scores: torch.Tensor, present: torch.Tensor | None = None, stat: ImportanceStat = "mean"
) -> torch.Tensor:
    """Per-sample modality importance s (eq. 2). (B, M, N) -> (B, M).

    sigma = mean_n eta (or std / max), floored at ``SIGMA_FLOOR``; s = sigma / sum of sigma over
    present modalities. Absent modalities get exactly 0; rows sum to 1 when any is present.
    """
    if stat == "mean":
        sigma = scores.mean(dim=-1)
    elif stat == "std":
        sigma = scores.std(dim=-1, unbiased=False)
    elif stat == "max":
        sigma = scores.amax(dim=-1)
    else:
        raise ValueError(
            f"fusion.importance={stat!r} is not one of mean, std, max "
            "(alignment: use alignment_importance)"
        )
    sigma = sigma.clamp_min(SIGMA_FLOOR)
    if present is not None:
        sigma = sigma * present.to(sigma.dtype)
    return sigma / sigma.sum(dim=-1, keepdim=True).clamp_min(SIGMA_FLOOR)


def alignment_importance(tokens: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Modality importance from cross-modal agreement (``fusion.importance=alignment``).

    Each modality's instance embedding e[b, m] is its mean-pooled, L2-normalised encoder output
    (the features L_I aligns across modalities, eq. 7). A modality whose embedding disagrees with
    the patient's other present modalities (noise, batch shift, zeroed input) gets low importance:

        a[b, m] = mean over present m' != m of cos(e[b, m], e[b, m'])   (in [-1, 1])
        s[b, m] = max(a[b, m], SIGMA_FLOOR) / sum over present m' of max(a[b, m'], SIGMA_FLOOR)

    The floor (not a softmax) keeps an absolute scale: a modality that agrees with nothing gets
    ~0 whatever the others' agreement; when no modality agrees all get 1 / M_present.

    Args:
        tokens: (B, M, N, D) encoder outputs.
        present: (B, M) bool, True where the modality exists (default: all present).

    Returns:
        (B, M) float32, absent modalities exactly 0, rows summing to 1 over present modalities
        (all 0 when none is present). A sole present modality gets 1; with exactly two present
        both get 1/2 (agreement is symmetric, so it cannot tell which one is poor). Computed
        without gradient (``tokens`` is detached): it only sets how many tokens fusion replaces,
        like the attention-based estimator, whose K carries no gradient either.
    """
    b, m = tokens.shape[:2]
    if present is None:
        present = torch.ones(b, m, dtype=torch.bool, device=tokens.device)
    present = present.to(device=tokens.device, dtype=torch.bool)
    with torch.no_grad():
        emb = F.normalize(tokens.detach().float().mean(dim=2), dim=-1)  # (B, M, D)
        cos = emb @ emb.transpose(1, 2)  # (B, M, M)
        pair = present.unsqueeze(1) & present.unsqueeze(2)
        pair &= ~torch.eye(m, dtype=torch.bool, device=tokens.device)
        agreement = (cos * pair).sum(dim=-1) / pair.sum(dim=-1).clamp_min(1)
        weight = agreement.clamp_min(SIGMA_FLOOR) * present.float()
        return weight / weight.sum(dim=-1, keepdim=True).clamp_min(SIGMA_FLOOR)


def replacement_counts(
    importance: torch.Tensor, present: torch.Tensor, num_tokens: int, rule: ReplaceRule
) -> torch.Tensor:
    """K[b, m]: how many tokens of modality m to replace. (B, M) -> (B, M) int64.

    ``complement``: floor((1 - s_m) N / (M_present - 1)); ``paper``: floor(s_m N) (eq. 2 literal);
    ``deficit``: floor(N max(0, 1 - s_m M_present)), i.e. 0 at or above the uniform share
    1 / M_present, growing linearly to N at s_m = 0 (a modality judged worthless is rebuilt
    entirely from donors; uniform importances replace nothing).
    0 when only one modality is present; N for an absent modality (all its tokens imputed).
    """
    m_present = present.sum(dim=-1, keepdim=True)  # (B, 1)
    if rule == "complement":
        k = torch.floor((1.0 - importance) * num_tokens / (m_present - 1).clamp_min(1))
    elif rule == "paper":
        k = torch.floor(importance * num_tokens)
    elif rule == "deficit":
        deficit = (1.0 - importance * m_present).clamp_min(0.0)
        # + 1e-4: float rounding (e.g. 3 * (1/3) != 1) must not cost or gain a token at a boundary
        k = torch.floor(deficit * num_tokens + 1e-4)
    else:
        raise ValueError(f"fusion.replace_rule={rule!r} is not one of complement, paper, deficit")
    k = k.long().clamp(0, num_tokens)
    k = torch.where(m_present > 1, k, torch.zeros_like(k))
    # An absent modality is rebuilt from donors whenever at least one modality is present.
    return torch.where(present | (m_present == 0), k, torch.full_like(k, num_tokens))


def replace_uninformative_tokens(
    x: torch.Tensor,
    scores: torch.Tensor,
    importance: torch.Tensor,
    present: torch.Tensor | None = None,
    rule: ReplaceRule = "complement",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each modality's bottom-K tokens by the best same-position token of another modality.

    Args:
        x: (B, M, N, D) tokens.
        scores: (B, M, N) token scores eta.
        importance: (B, M) modality importance s.
        present: (B, M) bool, True where the modality exists (default: all present).
        rule: ``complement`` or ``paper`` (see :func:`replacement_counts`).

    Returns:
        x_new: (B, M, N, D); replaced tokens are copies of donor tokens (eq. 4): for position n the
            donor is the other present modality with the highest eta[b, ., n]. Absent modalities
            are never donors. Gradients reach kept and donor tokens; scores and K carry none.
        replaced_from: (B, M, N) int64 donor modality index, -1 where the token was kept.
    """
    b, m, n, _ = x.shape
    if present is None:
        present = torch.ones(b, m, dtype=torch.bool, device=x.device)
    present = present.bool()
    with torch.no_grad():
        scores = scores.detach().float()
        k = replacement_counts(importance.detach().float(), present, n, rule)  # (B, M)
        # Rank of each token within its modality, lowest score first; stable for ties.
        order = scores.argsort(dim=-1, stable=True)
        rank = torch.empty_like(order).scatter_(
            -1, order, torch.arange(n, device=x.device).expand_as(order)
        )
        replace = rank < k.unsqueeze(-1)  # (B, M, N)
        # donor_scores[b, target, donor, n]: the donor's eta, -inf where it cannot donate.
        eye = torch.eye(m, dtype=torch.bool, device=x.device)
        blocked = eye.view(1, m, m, 1) | ~present.view(b, 1, m, 1)
        donor_scores = scores.unsqueeze(1).expand(b, m, m, n).masked_fill(blocked, float("-inf"))
        donor = donor_scores.argmax(dim=2)  # (B, M, N)
        has_donor = torch.isfinite(donor_scores.amax(dim=2))
        replace &= has_donor
        replaced_from = torch.where(replace, donor, torch.full_like(donor, -1))
    gathered = x.gather(1, donor.unsqueeze(-1).expand_as(x))
    x_new = torch.where(replace.unsqueeze(-1), gathered, x)
    return x_new, replaced_from


class LinearTokenScorer(nn.Module):
    """Original token-fusion scoring (Table 5, ``fusion.token_score=linear``).

    One linear layer per modality predicts eta = sigmoid(w_m . x + b_m) for every token:
    (B, M, N, D) -> (B, M, N). The caller gates tokens by eta so the scorer receives gradient.
    """

    def __init__(self, num_modalities: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_modalities, dim))
        self.bias = nn.Parameter(torch.zeros(num_modalities))
        nn.init.normal_(self.weight, std=dim**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("bmnd,md->bmn", x, self.weight.to(x.dtype)) + self.bias[:, None]
        return torch.sigmoid(logits.float())


def importance_pooling(
    pooled: torch.Tensor, weights: torch.Tensor, present: torch.Tensor | None = None
) -> torch.Tensor:
    """Scale each modality's pooled vector by its weight (``fusion.pooling=importance``).

    (B, M, D), (B, M) -> (B, M, D): ``pooled[:, m] * weights[:, m] * M_present``, so uniform weights
    over the present modalities leave the vectors unchanged, and a modality of weight 0 contributes
    exactly 0 to the head's input whatever its tokens. ``weights`` carry no gradient: they are the
    importance that drove fusion, read, not a gate trained through the head.
    """
    b, m = weights.shape
    if present is None:
        present = torch.ones(b, m, dtype=torch.bool, device=weights.device)
    m_present = present.sum(dim=-1, keepdim=True).clamp_min(1).to(pooled.dtype)
    scale = weights.detach().to(pooled.dtype) * present.to(pooled.dtype) * m_present
    return pooled * scale.unsqueeze(-1)


def deficit_weights(importance: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Weights from the importance deficit (``fusion.pooling=deficit`` / ``deficit_logits``).

    (B, M) -> (B, M): ``min(1, s_m M_present)`` over present modalities, 0 for absent ones. A
    modality at or above the uniform share 1 / M_present keeps full weight (clean patients get
    plain late fusion), one at importance 0 gets 0 (dropped, like the oracle that drops a
    corrupted modality), linear in between: the mirror of the ``deficit`` replacement rule.
    Some present modality always has s >= 1 / M_present, so a patient with any modality keeps a
    positive total weight. Detached: read from the importance, not trained through the heads.
    """
    b, m = importance.shape
    if present is None:
        present = torch.ones(b, m, dtype=torch.bool, device=importance.device)
    present = present.to(device=importance.device, dtype=torch.bool)
    m_present = present.sum(dim=-1, keepdim=True).to(torch.float32)
    weight = (importance.detach().float() * m_present).clamp(0.0, 1.0)
    # float rounding (3 * (1/3) < 1) must not cost a uniform modality its full weight
    weight = torch.where(weight >= 1.0 - 1e-4, torch.ones_like(weight), weight)
    return weight * present.float()


def importance_late_fusion(
    logits: torch.Tensor,
    weights: torch.Tensor,
    present: torch.Tensor | None = None,
    task: Literal["classification", "survival"] = "classification",
) -> torch.Tensor:
    """Per-modality predictions mixed by per-patient weights (``fusion.pooling=importance_logits``).

    (B, M, K) logits of one head per modality, (B, M) weights -> (B, K) fused logits. The weights
    (detached: the importance that drove fusion, read, not a gate trained through the heads) are
    zeroed for absent modalities and renormalised over the rest; the fused prediction is the
    weighted mean of the per-modality class probabilities (classification) or per-bin hazards
    (survival), returned as logits of that mean (log of the probabilities; logit of the hazard),
    like late fusion, which it equals for uniform weights. A modality of weight 0 cannot move the
    fused logits whatever its own; a patient with no weight at all gets all-zero logits.
    """
    b, m = weights.shape
    if present is None:
        present = torch.ones(b, m, dtype=torch.bool, device=weights.device)
    w = weights.detach().float() * present.float()
    total = w.sum(dim=1, keepdim=True)
    w = w / total.clamp_min(1e-12)
    # Rows without any weight mix everything (finite, so no NaN gradient) and are zeroed below.
    keep = ((w > 0) | (total <= 0)).unsqueeze(-1)  # (B, M, 1)
    log_w = torch.log(w.clamp_min(1e-30)).unsqueeze(-1)
    logits = logits.float()

    def log_mix(log_values: torch.Tensor) -> torch.Tensor:
        masked = (log_values + log_w).masked_fill(~keep, -math.inf)
        return torch.logsumexp(masked, dim=1)

    if task == "classification":
        fused = log_mix(F.log_softmax(logits, dim=-1))
    elif task == "survival":
        fused = log_mix(F.logsigmoid(logits)) - log_mix(F.logsigmoid(-logits))
    else:
        raise ValueError(f"task={task!r} is not one of classification, survival")
    return torch.where(total > 0, fused, torch.zeros_like(fused))
