"""Losses: task losses (cross-entropy, discrete-time survival NLL) and AMC's auxiliary losses
(two-level contrastive L_I / L_T, Appendix A.1). The SMoE balance loss lives in :mod:`moe`."""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, (B, C) logits and (B,) int64 labels."""
    return F.cross_entropy(logits.float(), labels)


def survival_nll(
    hazard_logits: torch.Tensor, time_bin: torch.Tensor, event: torch.Tensor
) -> torch.Tensor:
    """Discrete-time survival negative log-likelihood, averaged over the batch.

    Args:
        hazard_logits: (B, T); hazard h_t = sigmoid(logit_t).
        time_bin: (B,) int64 bin of the event / censoring time.
        event: (B,) 1 = death observed, 0 = censored.

    Observed in bin j: -log S_{j-1} - log h_j. Censored in bin j: -log S_j (survived bin j).
    """
    log_h = F.logsigmoid(hazard_logits.float())  # log h_t
    log_1mh = F.logsigmoid(-hazard_logits.float())  # log (1 - h_t)
    log_s = torch.cumsum(log_1mh, dim=-1)  # log S_t
    log_s_prev = F.pad(log_s, (1, 0))[:, :-1]  # log S_{t-1}, S_{-1} = 1
    j = time_bin.long().unsqueeze(-1)
    event = event.float()
    observed = -(log_s_prev.gather(1, j) + log_h.gather(1, j)).squeeze(-1)
    censored = -log_s.gather(1, j).squeeze(-1)
    return (event * observed + (1.0 - event) * censored).mean()


#: Largest logits block (elements) L_T materialises at once; beyond it rows are processed in
#: checkpointed blocks, so memory grows linearly in B*N instead of quadratically (16 MiB fp32).
MAX_LOGITS = 1 << 22

TokenPairs = Literal["all", "ring"]


def _rows_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float, rows: int) -> torch.Tensor:
    """Mean over i of -log softmax(a_i b^T / T)[i], in blocks of ``rows`` rows of ``a``.

    Each block's logits are recomputed in the backward pass (activation checkpointing), so at
    most one (rows, len(b)) block is alive at a time.
    """

    def block_loss(a_block: torch.Tensor, b_pos: torch.Tensor) -> torch.Tensor:
        lse = torch.logsumexp(a_block @ b.T / temperature, dim=-1)
        return (lse - (a_block * b_pos).sum(-1) / temperature).sum()

    total = a.new_zeros(())
    for start in range(0, a.shape[0], rows):
        stop = start + rows
        total = total + checkpoint(block_loss, a[start:stop], b[start:stop], use_reentrant=False)
    return total / a.shape[0]


def _symmetric_info_nce(
    a: torch.Tensor, b: torch.Tensor, temperature: float, max_logits: int = MAX_LOGITS
) -> torch.Tensor:
    """Mean over rows of 1/2 CE(a b^T / T) + 1/2 CE(b a^T / T); row i's positive is row i.

    Above ``max_logits`` logits the two directions are computed block-wise (same value up to
    float rounding, memory linear in the number of rows).
    """
    n = a.shape[0]
    rows = max(1, max_logits // max(n, 1))
    if rows >= n:
        logits = a @ b.T / temperature
        target = torch.arange(n, device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return 0.5 * (
        _rows_info_nce(a, b, temperature, rows) + _rows_info_nce(b, a, temperature, rows)
    )


def modality_pairs(num_modalities: int, scheme: TokenPairs = "all") -> list[tuple[int, int]]:
    """Modality pairs a contrastive loss sums over.

    ``all``: every pair, M(M-1)/2 (quadratic in M). ``ring``: each modality with the next one,
    (0, 1), (1, 2), ..., (M-1, 0): M pairs for M >= 3 (linear in M; the same set as ``all`` for
    M <= 3), every modality in two pairs, and the pairs connect all modalities.
    """
    m = num_modalities
    if scheme == "all":
        return list(itertools.combinations(range(m), 2))
    if scheme == "ring":
        if m < 3:
            return list(itertools.combinations(range(m), 2))
        return sorted({tuple(sorted((i, (i + 1) % m))) for i in range(m)})
    raise ValueError(f"loss.token_pairs={scheme!r} is not one of all, ring")


def _pairs(present: torch.Tensor, scheme: TokenPairs = "all"):
    for i, j in modality_pairs(present.shape[1], scheme):
        both = present[:, i] & present[:, j]
        if int(both.sum()) >= 2:
            yield i, j, both


def instance_contrastive_loss(
    tokens: torch.Tensor, present: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """L_I (eq. 7): per pair of modalities, mean-pooled L2-normalised instance features, positives
    = same patient. Averaged over samples and over modality pairs present in >= 2 samples.

    Args:
        tokens: (B, M, N, D) encoder outputs. present: (B, M) bool.
    """
    pooled = F.normalize(tokens.float().mean(dim=2), dim=-1)  # (B, M, D)
    losses = [
        _symmetric_info_nce(pooled[both, i], pooled[both, j], temperature)
        for i, j, both in _pairs(present)
    ]
    return torch.stack(losses).mean() if losses else tokens.new_zeros((), dtype=torch.float32)


def token_contrastive_loss(
    tokens: torch.Tensor,
    present: torch.Tensor,
    temperature: float = 0.1,
    pairs: TokenPairs = "all",
    max_logits: int = MAX_LOGITS,
) -> torch.Tensor:
    """L_T (eq. 8): per pair of modalities, L2-normalised tokens; the positive of token n of
    patient i in modality m is token n of patient i in m'; every other (patient, position) of m' is
    a negative. Averaged over tokens and over the modality pairs of ``pairs`` (see
    :func:`modality_pairs`) present in >= 2 samples.

    Args:
        tokens: (B, M, N, D) encoder outputs. present: (B, M) bool.
        max_logits: largest logits block built at once (see :data:`MAX_LOGITS`).
    """
    normed = F.normalize(tokens.float(), dim=-1)  # (B, M, N, D)
    losses = []
    for i, j, both in _pairs(present, pairs):
        a = normed[both, i].reshape(-1, normed.shape[-1])
        b = normed[both, j].reshape(-1, normed.shape[-1])
        losses.append(_symmetric_info_nce(a, b, temperature, max_logits))
    return torch.stack(losses).mean() if losses else tokens.new_zeros((), dtype=torch.float32)
