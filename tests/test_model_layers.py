"""Differential attention, SMoE and losses against the paper's formulas."""

import math

import torch
from torch.nn import functional as F

from amc.model.attention import DifferentialAttention, VanillaAttention
from amc.model.heads import discretize_time, risk_score, survival_bin_edges
from amc.model.losses import (
    instance_contrastive_loss,
    survival_nll,
    token_contrastive_loss,
)
from amc.model.moe import DenseFFN, SparseMoE, load_balancing_loss


def test_lambda_reparameterisation():
    attn = DifferentialAttention(16, heads=2, lambda_init=0.1)
    with torch.no_grad():
        attn.lambda_q1.fill_(0.5)
        attn.lambda_k1.fill_(0.2)  # dot = 4 * 0.1 = 0.4
        attn.lambda_q2.fill_(-0.1)
        attn.lambda_k2.fill_(0.3)  # dot = 4 * -0.03 = -0.12
    expected = math.exp(0.4) - math.exp(-0.12) + 0.1
    assert abs(attn.lambda_value().item() - expected) < 1e-6


def test_differential_map_matches_manual_single_head():
    torch.manual_seed(0)
    dim, n = 8, 5
    attn = DifferentialAttention(dim, heads=1, lambda_init=0.2)
    x = torch.randn(2, n, dim)
    _, a = attn(x)
    d = dim // 2
    q = attn.q_proj(x)
    k = attn.k_proj(x)
    a1 = torch.softmax(q[..., :d] @ k[..., :d].transpose(1, 2) / math.sqrt(d), -1)
    a2 = torch.softmax(q[..., d:] @ k[..., d:].transpose(1, 2) / math.sqrt(d), -1)
    lam = attn.lambda_value()
    assert torch.allclose(a, a1 - lam * a2, atol=1e-5)
    # rows of a differential map sum to 1 - lambda; bidirectional: upper triangle is used
    assert torch.allclose(a.sum(-1), (1 - lam).expand(2, n), atol=1e-5)
    assert a.triu(1).abs().sum() > 0


def test_differential_output_uses_per_head_rmsnorm_and_scale():
    torch.manual_seed(1)
    dim, n, heads = 8, 4, 2
    attn = DifferentialAttention(dim, heads=heads, lambda_init=0.3)
    x = torch.randn(1, n, dim)
    out, _ = attn(x)
    d = dim // (2 * heads)
    q = attn.q_proj(x).view(1, n, 2 * heads, d).transpose(1, 2)
    k = attn.k_proj(x).view(1, n, 2 * heads, d).transpose(1, 2)
    v = attn.v_proj(x).view(1, n, heads, 2 * d).transpose(1, 2)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1).view(1, heads, 2, n, n)
    a = p[:, :, 0] - attn.lambda_value() * p[:, :, 1]
    h = a @ v
    h = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * attn.head_norm.weight
    expected = attn.out_proj((1 - 0.3) * h.transpose(1, 2).reshape(1, n, dim))
    assert torch.allclose(out, expected, atol=1e-5)


def test_vanilla_map_is_row_stochastic():
    attn = VanillaAttention(16, heads=4)
    out, a = attn(torch.randn(3, 6, 16))
    assert out.shape == (3, 6, 16) and a.shape == (3, 6, 6)
    assert torch.all(a >= 0) and torch.allclose(a.sum(-1), torch.ones(3, 6), atol=1e-5)


def test_load_balancing_loss_lower_for_uniform_routing():
    e, t = 4, 400
    uniform_probs = torch.full((t, e), 1 / e)
    uniform_index = torch.arange(t).remainder(e).view(t, 1)
    collapsed_probs = F.one_hot(torch.zeros(t, dtype=torch.long), e).float() * 0.97 + 0.01
    collapsed_index = torch.zeros(t, 1, dtype=torch.long)
    uniform = load_balancing_loss(uniform_probs, uniform_index)
    collapsed = load_balancing_loss(collapsed_probs, collapsed_index)
    assert abs(uniform.item() - 1.0) < 1e-6
    assert collapsed.item() > 3.5


def test_smoe_balance_loss_has_gradient_on_gate():
    torch.manual_seed(0)
    moe = SparseMoE(16, experts=4, top_k=2)
    y, balance = moe(torch.randn(2, 10, 16))
    balance.backward()
    assert moe.gate.weight.grad is not None and moe.gate.weight.grad.abs().sum() > 0


def test_smoe_output_is_renormalised_topk_mixture():
    torch.manual_seed(0)
    moe = SparseMoE(8, experts=4, top_k=2)
    x = torch.randn(1, 3, 8)
    y, _ = moe(x)
    tok = x[0, 1]
    probs = torch.softmax(moe.gate(tok), -1)
    top_p, top_i = probs.topk(2)
    w = top_p / top_p.sum()
    expected = sum(w[j] * moe.experts[int(top_i[j])](tok) for j in range(2))
    assert torch.allclose(y[0, 1], expected, atol=1e-5)


def test_dense_ffn_has_zero_balance_loss():
    y, balance = DenseFFN(8)(torch.randn(2, 3, 8))
    assert y.shape == (2, 3, 8) and balance.item() == 0.0


def test_contrastive_losses_random_near_log_b_and_aligned_near_zero():
    torch.manual_seed(0)
    b, n, d = 32, 4, 256
    present = torch.ones(b, 2, dtype=torch.bool)
    random_tokens = torch.randn(b, 2, n, d)
    li = instance_contrastive_loss(random_tokens, present, temperature=1.0)
    lt = token_contrastive_loss(random_tokens, present, temperature=1.0)
    assert abs(li.item() - math.log(b)) < 0.15
    assert abs(lt.item() - math.log(b * n)) < 0.15
    same = torch.randn(b, 1, n, d).expand(b, 2, n, d).contiguous()
    assert instance_contrastive_loss(same, present, temperature=0.05).item() < 0.05
    assert token_contrastive_loss(same, present, temperature=0.05).item() < 0.05


def test_contrastive_ignores_absent_pairs():
    tokens = torch.randn(4, 3, 2, 8)
    present = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0]]).bool()
    # modality 2 is never present: only the (0, 1) pair over 3 samples counts
    sub = tokens[[0, 1, 3]][:, :2]
    full = instance_contrastive_loss(tokens, present)
    ref = instance_contrastive_loss(sub, torch.ones(3, 2, dtype=torch.bool))
    assert torch.allclose(full, ref)


def test_survival_nll_against_hand_computation():
    logits = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]])
    h = torch.sigmoid(logits)
    # patient 0: death observed in bin 1 -> -log((1 - h00) * h01)
    l0 = -math.log((1 - h[0, 0]) * h[0, 1])
    # patient 1: censored in bin 2 -> -log((1 - h10)(1 - h11)(1 - h12))
    l1 = -math.log((1 - h[1, 0]) * (1 - h[1, 1]) * (1 - h[1, 2]))
    got = survival_nll(logits, torch.tensor([1, 2]), torch.tensor([1, 0]))
    assert abs(got.item() - (l0 + l1) / 2) < 1e-5


def test_survival_bins_and_risk():
    time = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8]).numpy()
    event = torch.tensor([1, 1, 1, 1, 1, 1, 1, 1]).numpy()
    cuts = survival_bin_edges(time, event, 4)
    assert len(cuts) == 3 and list(discretize_time(time, cuts)) == [0, 0, 1, 1, 2, 2, 3, 3]
    high = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    low = torch.tensor([[-3.0, -3.0, -3.0, -3.0]])
    assert risk_score(high) > risk_score(low)
