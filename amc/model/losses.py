"""Losses: task losses (cross-entropy, discrete-time survival NLL) and AMC's auxiliary losses
(two-level contrastive L_I / L_T, Appendix A.1). The SMoE balance loss lives in :mod:`moe`."""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from torch.nn import functional as F


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, reduction: Literal["mean", "none"] = "mean"
) -> torch.Tensor:
    """Softmax cross-entropy, (B, C) logits and (B,) int64 labels; ``reduction="none"``: (B,)."""
    return F.cross_entropy(logits.float(), labels, reduction=reduction)


def survival_nll(
    hazard_logits: torch.Tensor,
    time_bin: torch.Tensor,
    event: torch.Tensor,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Discrete-time survival negative log-likelihood, averaged over the batch (or per sample,
    (B,), with ``reduction="none"``).

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
    nll = event * observed + (1.0 - event) * censored
    return nll if reduction == "none" else nll.mean()


#: Largest logits block (elements) L_T materialises at once; beyond it rows are processed in
#: blocks whose logits are recomputed in the backward pass, so memory grows linearly in B*N
#: instead of quadratically (16 MiB fp32).
MAX_LOGITS = 1 << 22

TokenPairs = Literal["all", "ring"]


class SymmetricInfoNCE(torch.autograd.Function):
    """Mean over rows of 1/2 CE(a b^T / T) + 1/2 CE(b a^T / T), row i's positive is row i, with
    a hand-written backward.

    ``a``, ``b``: (n, D). With S = a b^T / T (n, n), the loss is
    ``1/2n sum_i (lse_row_i + lse_col_i) - 1/n sum_i S_ii``, so its gradient is
    ``dS = (P_row + P_col) / 2n - I / n`` (P_row / P_col the row / column softmax of S):
    ``grad_a = dS b / T`` and ``grad_b = dS^T a / T``. Autograd through two cross-entropies keeps
    the logits, both log-softmax outputs and their gradients alive and sums them (about fifteen
    passes over n^2 values). Here, with all rows in one block (``rows >= n``), the forward pass
    builds P_row + P_col in the logits' place and the backward pass is two matmuls; with several
    blocks of ``rows`` rows, the forward pass keeps only the log-sum-exps and the backward pass
    recomputes each block's logits (memory linear in n). ``logit_bound``, a bound on |S| the
    caller guarantees (1 / T for L2-normalised rows), lets the one-block forward pass use one
    unshifted exponential for both softmaxes (:func:`_softmax_pair_bounded`) when that is safe.

    Softmax statistics are at least float32; the matmuls follow autocast (bf16 on CUDA), as
    before.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(
        ctx,
        a: torch.Tensor,
        b: torch.Tensor,
        temperature: float,
        rows: int,
        logit_bound: float | None = None,
    ):
        n = a.shape[0]
        stats = torch.promote_types(a.dtype, torch.float32)  # float32 at least, float64 stays
        scaled = a / temperature  # scaling the (n, D) side is cheaper than the (n, n) logits
        positive = (scaled.to(stats) * b.to(stats)).sum()  # sum_i S_ii
        ctx.temperature, ctx.rows = temperature, rows
        if rows >= n:
            logits = (scaled @ b.T).to(stats)
            if logit_bound is not None and 2 * logit_bound + math.log(n) <= _SAFE_SPREAD:
                # its matrix-vector product carries statistics: float32 under autocast too
                with torch.autocast(logits.device.type, enabled=False):
                    probs, lse_sum = _softmax_pair_bounded(logits)
            else:
                probs, lse_sum = _softmax_pair(logits)
            ctx.save_for_backward(a, b, probs.to(a.dtype))
            return 0.5 * lse_sum / n - positive / n
        lse_row = a.new_empty(n, dtype=stats)
        lse_col = None
        for start in range(0, n, rows):
            logits = (scaled[start : start + rows] @ b.T).to(stats)
            lse_row[start : start + rows] = torch.logsumexp(logits, dim=1)
            block_col = torch.logsumexp(logits, dim=0)
            lse_col = block_col if lse_col is None else torch.logaddexp(lse_col, block_col)
        ctx.save_for_backward(a, b, lse_row, lse_col)
        return 0.5 * (lse_row.sum() + lse_col.sum()) / n - positive / n

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: torch.Tensor):
        a, b, *saved = ctx.saved_tensors
        n, temperature, rows = a.shape[0], ctx.temperature, ctx.rows
        if len(saved) == 1:  # one block: P_row + P_col kept from the forward pass
            (probs,) = saved
            grad_a, grad_b = probs @ b, probs.T @ a
        else:
            grad_a, grad_b = _blockwise_softmax_products(a, b, *saved, temperature, rows)
        # the -I / n part of dS: row i's positive pulls a_i towards b_i and b_i towards a_i
        scale = grad / (2 * n * temperature)
        return (grad_a - 2 * b) * scale, (grad_b - 2 * a) * scale, None, None, None


#: Largest spread of log-sum-exps (|S| <= bound: 2 bound + log n) for which the bounded path's
#: exp(-spread) stays a normal float32 (e^-87 is the smallest).
_SAFE_SPREAD = 60.0


def _softmax_pair(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P_row + P_col of (n, n) logits (in their buffer) and sum_i (lse_row_i + lse_col_i)."""
    probs = torch.log_softmax(logits, dim=1)
    lse_row_sum = (logits.diagonal() - probs.diagonal()).sum()
    lse_col = torch.logsumexp(logits, dim=0)
    probs = probs.exp_()  # P_row, in the log-softmax's buffer
    probs += logits.sub_(lse_col).exp_()  # + P_col, in the logits' buffer
    return probs, lse_row_sum + lse_col.sum()


def _softmax_pair_bounded(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_softmax_pair` from one exponential pass and no second (n, n) buffer, for logits
    whose log-sum-exps spread less than ``_SAFE_SPREAD`` (the caller knows a bound on |S|).

    With |S| bounded, E = exp(S) needs no shift: its row sums r and column sums c stay in
    float32's normal range, lse_row = log r, lse_col = log c, and P_row + P_col =
    E * (1 / r_i + 1 / c_j), written over E in place. Every fresh (n, n) buffer costs page
    faults on CPU (a third of this function's time at n = 2048), so there is only the logits'.
    """
    n = logits.shape[0]
    exp = logits.exp_()  # E, in the logits' buffer
    ones = exp.new_ones(n)
    row, col = exp @ ones, ones @ exp  # matrix-vector products: one pass each, no (n, n) temp
    lse_sum = row.log().sum() + col.log().sum()
    inv_row, inv_col = row.reciprocal(), col.reciprocal()
    # (1 / r_i + 1 / c_j) a block of rows at a time: a cache-sized temporary, not an (n, n) one
    # (on GPU one broadcast; its caching allocator makes the temporary free).
    step = max(1, _COMBINE_BLOCK // n) if exp.device.type == "cpu" else n
    for start in range(0, n, step):
        stop = start + step
        exp[start:stop].mul_(inv_row[start:stop, None] + inv_col)
    return exp, lse_sum


#: Elements of the (1 / r_i + 1 / c_j) block :func:`_softmax_pair_bounded` builds at once (CPU).
_COMBINE_BLOCK = 1 << 16


def _blockwise_softmax_products(
    a: torch.Tensor,
    b: torch.Tensor,
    lse_row: torch.Tensor,
    lse_col: torch.Tensor,
    temperature: float,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_row + P_col) b and (P_row + P_col)^T a, one block of ``rows`` logits rows at a time."""
    scaled = a / temperature
    grad_a = torch.empty_like(a)
    grad_b = torch.zeros_like(b)
    for start in range(0, a.shape[0], rows):
        stop = start + rows
        logits = (scaled[start:stop] @ b.T).to(lse_row.dtype)
        probs = torch.sub(logits, lse_row[start:stop, None]).exp_()
        probs += logits.sub_(lse_col).exp_()  # P_row + P_col, (rows, n)
        probs = probs.to(a.dtype)
        grad_a[start:stop] = probs @ b
        grad_b.addmm_(probs.T, a[start:stop])
    return grad_a, grad_b


def _symmetric_info_nce(
    a: torch.Tensor, b: torch.Tensor, temperature: float, max_logits: int = MAX_LOGITS
) -> torch.Tensor:
    """Mean over rows of 1/2 CE(a b^T / T) + 1/2 CE(b a^T / T); row i's positive is row i.

    ``a`` and ``b`` (n, D) must have L2-normalised rows (what L_I and L_T compare). Above
    ``max_logits`` logits the rows are processed block-wise (same value up to float
    rounding, memory linear in the number of rows). See :class:`SymmetricInfoNCE`.
    """
    n = a.shape[0]
    rows = min(n, max(1, max_logits // max(n, 1)))
    return SymmetricInfoNCE.apply(a, b, temperature, rows, 1.0 / temperature)


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
