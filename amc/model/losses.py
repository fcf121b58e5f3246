"""Losses: task losses (cross-entropy, discrete-time survival NLL) and AMC's auxiliary losses
(two-level contrastive L_I / L_T, Appendix A.1). The SMoE balance loss lives in :mod:`moe`."""

from __future__ import annotations

import itertools

import torch
from torch.nn import functional as F


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


def _symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows of 1/2 CE(a b^T / T) + 1/2 CE(b a^T / T); row i's positive is row i."""
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _pairs(present: torch.Tensor):
    m = present.shape[1]
    for i, j in itertools.combinations(range(m), 2):
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
    tokens: torch.Tensor, present: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """L_T (eq. 8): per pair of modalities, L2-normalised tokens; the positive of token n of
    patient i in modality m is token n of patient i in m'; every other (patient, position) of m' is
    a negative. Averaged over tokens and modality pairs.
    """
    normed = F.normalize(tokens.float(), dim=-1)  # (B, M, N, D)
    losses = []
    for i, j, both in _pairs(present):
        a = normed[both, i].reshape(-1, normed.shape[-1])
        b = normed[both, j].reshape(-1, normed.shape[-1])
        losses.append(_symmetric_info_nce(a, b, temperature))
    return torch.stack(losses).mean() if losses else tokens.new_zeros((), dtype=torch.float32)
