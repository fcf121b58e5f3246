"""Mutation-style checks: each compares an implementation with an independent reference (a loop
written from the paper's equations, or scikit-survival) on tiny inputs, so a plausible wrong
implementation (one-directional InfoNCE, an encoder that ignores its padding mask, mixed-up
differential heads, another censoring estimate) fails."""

import math

import numpy as np
import pytest
import torch
from sksurv import metrics as sksurv_metrics
from sksurv import nonparametric as sksurv_np
from sksurv.util import Surv
from torch.nn import functional as F

from amc.evaluation.metrics import _eval_step, censoring_survival, concordance_index_ipcw
from amc.model.attention import DifferentialAttention
from amc.model.encoders import QueryTokenEncoder
from amc.model.losses import (
    instance_contrastive_loss,
    modality_pairs,
    token_contrastive_loss,
)

T = 0.3


def _eq7_loop(tokens: torch.Tensor, present: torch.Tensor, temperature: float) -> float:
    """Eq. 7 term by term; features L2-normalised (cosine), mean over i and over pairs."""
    b, m = present.shape
    x = F.normalize(tokens.double().mean(dim=2), dim=-1)  # instance features (B, M, D)
    per_pair = []
    for mi in range(m):
        for mj in range(mi + 1, m):
            rows = [i for i in range(b) if present[i, mi] and present[i, mj]]
            if len(rows) < 2:
                continue
            total = 0.0
            for i in rows:
                pos = math.exp(float(x[i, mi] @ x[i, mj]) / temperature)
                den_1 = sum(math.exp(float(x[i, mi] @ x[j, mj]) / temperature) for j in rows)
                den_2 = sum(math.exp(float(x[j, mi] @ x[i, mj]) / temperature) for j in rows)
                total += -0.5 * math.log(pos / den_1) - 0.5 * math.log(pos / den_2)
            per_pair.append(total / len(rows))
    return sum(per_pair) / len(per_pair)


def _eq8_loop(tokens: torch.Tensor, pairs: list[tuple[int, int]], temperature: float) -> float:
    """Eq. 8 term by term over (i, n); tokens L2-normalised, mean over (i, n) and pairs."""
    b, _, n, _ = tokens.shape
    a = F.normalize(tokens.double(), dim=-1)
    per_pair = []
    for mi, mj in pairs:
        total = 0.0
        for i in range(b):
            for k in range(n):
                pos = math.exp(float(a[i, mi, k] @ a[i, mj, k]) / temperature)
                den_1 = sum(
                    math.exp(float(a[i, mi, k] @ a[j, mj, q]) / temperature)
                    for j in range(b)
                    for q in range(n)
                )
                den_2 = sum(
                    math.exp(float(a[j, mi, q] @ a[i, mj, k]) / temperature)
                    for j in range(b)
                    for q in range(n)
                )
                total += -0.5 * math.log(pos / den_1) - 0.5 * math.log(pos / den_2)
        per_pair.append(total / (b * n))
    return sum(per_pair) / len(per_pair)


def test_instance_loss_equals_eq7_loop_with_missing_modalities():
    tokens = torch.randn(5, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]]).bool()
    got = instance_contrastive_loss(tokens, present, temperature=T)
    assert got.item() == pytest.approx(_eq7_loop(tokens, present, T), abs=1e-5)


@pytest.mark.parametrize("scheme", ["all", "ring"])
def test_token_loss_equals_eq8_loop(scheme):
    tokens = torch.randn(3, 4, 2, 4, generator=torch.Generator().manual_seed(1))
    present = torch.ones(3, 4, dtype=torch.bool)
    got = token_contrastive_loss(tokens, present, temperature=T, pairs=scheme)
    ref = _eq8_loop(tokens, modality_pairs(4, scheme), T)
    assert got.item() == pytest.approx(ref, abs=1e-5)


def test_pair_schemes():
    assert modality_pairs(2, "ring") == [(0, 1)]
    assert modality_pairs(3, "ring") == modality_pairs(3, "all")
    assert modality_pairs(4, "ring") == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert len(modality_pairs(8, "ring")) == 8 and len(modality_pairs(8, "all")) == 28
    with pytest.raises(ValueError, match="all, ring"):
        modality_pairs(3, "star")


def test_blockwise_token_loss_has_the_same_value_and_gradient():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(6, 3, 5, 8, generator=gen)
    present = torch.ones(6, 3, dtype=torch.bool)
    present[0, 2] = False
    results = []
    for max_logits in (10**9, 7, 64):  # one block; one row per block; several rows per block
        tokens = base.clone().requires_grad_(True)
        loss = token_contrastive_loss(tokens, present, T, max_logits=max_logits)
        loss.backward()
        results.append((loss.detach(), tokens.grad))
    for loss, grad in results[1:]:
        assert torch.allclose(loss, results[0][0], atol=1e-5)
        assert torch.allclose(grad, results[0][1], atol=1e-6)


def test_padded_bag_items_cannot_change_the_encoder_output():
    torch.manual_seed(0)
    enc = QueryTokenEncoder(in_dim=6, tokens=3, dim=8, heads=2, bag=True).eval()
    bag = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]).bool()
    out = enc(bag, mask)
    noisy = bag.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), 6)
    assert torch.allclose(enc(noisy, mask), out, atol=1e-5)
    for b in range(3):  # the same as encoding only the real items
        alone = enc(bag[b : b + 1, mask[b]])
        assert torch.allclose(alone, out[b : b + 1], atol=1e-5)


def test_differential_attention_head_by_head():
    torch.manual_seed(3)
    dim, n, heads = 16, 5, 4
    attn = DifferentialAttention(dim, heads=heads, lambda_init=0.2)
    with torch.no_grad():
        attn.out_proj.weight.copy_(torch.eye(dim))  # heads stay readable in the output
        attn.head_norm.weight.fill_(1.0)
    x = torch.randn(2, n, dim)
    out, mean_map = attn(x)
    d = dim // (2 * heads)
    q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    lam = attn.lambda_value()
    maps = []
    for i in range(heads):
        # head i owns [Q1; Q2] = columns [2 i d, 2 i d + 2 d) of x W^Q (same for K), V: 2d wide
        q1, q2 = q[..., 2 * i * d : (2 * i + 1) * d], q[..., (2 * i + 1) * d : (2 * i + 2) * d]
        k1, k2 = k[..., 2 * i * d : (2 * i + 1) * d], k[..., (2 * i + 1) * d : (2 * i + 2) * d]
        a1 = torch.softmax(q1 @ k1.transpose(1, 2) / math.sqrt(d), -1)
        a2 = torch.softmax(q2 @ k2.transpose(1, 2) / math.sqrt(d), -1)
        a_i = a1 - lam * a2
        h = a_i @ v[..., 2 * i * d : (2 * i + 2) * d]
        h = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        assert torch.allclose(out[..., 2 * i * d : (2 * i + 2) * d], (1 - 0.2) * h, atol=1e-5)
        maps.append(a_i)
    assert torch.allclose(mean_map, torch.stack(maps).mean(0), atol=1e-6)
    assert not torch.allclose(maps[0], maps[1], atol=1e-3)  # the heads really differ


# ------------------------------------------------------------------ IPCW vs scikit-survival
def _structured(event, time):
    return Surv.from_arrays(event=event.astype(bool), time=time.astype(float))


def _survival_data(seed: int, tied: bool):
    rng = np.random.default_rng(seed)
    if tied:  # integer times and risks: many ties in time and in risk
        train_t = rng.integers(1, 10, 60).astype(float)
        test_t = rng.integers(1, 9, 40).astype(float)
        risk = rng.integers(0, 4, 40).astype(float)
    else:
        train_t = rng.exponential(10, 60) + 0.1
        test_t = rng.uniform(0.1, train_t.max() * 0.9, 40)
        risk = rng.normal(size=40)
    train_e = rng.random(60) < 0.6
    train_e[np.argmax(train_t)] = True  # G stays > 0 up to the last training time
    test_e = rng.random(40) < 0.6
    return train_t, train_e, test_t, test_e, risk


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_censoring_km_matches_sksurv(seed, tied):
    train_t, train_e, test_t, _, _ = _survival_data(seed, tied)
    times, g = censoring_survival(train_t, train_e.astype(int))
    ref = sksurv_np.CensoringDistributionEstimator().fit(_structured(train_e, train_t))
    probe = np.unique(np.concatenate([train_t, test_t]))
    np.testing.assert_allclose(_eval_step(times, g, probe), ref.predict_proba(probe), atol=1e-12)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ipcw_c_index_matches_sksurv(seed, tied):
    train_t, train_e, test_t, test_e, risk = _survival_data(seed, tied)
    ours = concordance_index_ipcw(
        train_t, train_e.astype(int), test_t, test_e.astype(int), risk
    )
    ref = sksurv_metrics.concordance_index_ipcw(
        _structured(train_e, train_t), _structured(test_e, test_t), risk
    )[0]
    assert ours == pytest.approx(ref, abs=1e-12)
    tau = float(np.median(test_t))
    ours_tau = concordance_index_ipcw(
        train_t, train_e.astype(int), test_t, test_e.astype(int), risk, tau=tau
    )
    ref_tau = sksurv_metrics.concordance_index_ipcw(
        _structured(train_e, train_t), _structured(test_e, test_t), risk, tau=tau
    )[0]
    assert ours_tau == pytest.approx(ref_tau, abs=1e-12)
