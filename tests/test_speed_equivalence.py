"""The fast training-step paths against the previous, unfused computation.

The reference implementations below are the straightforward versions the library used before
the speed work (materialised differential maps combined before ``@ V``, a Python loop over
experts with one ``nonzero`` each, ``nn.TransformerEncoderLayer``'s own forward, InfoNCE as two
cross-entropies with autograd's backward). With dropout
off the fast paths must give the same outputs, loss and gradients to 1e-5 on a tiny batch.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from unittest import mock

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from amc.model import AMC, AMCConfig, losses
from amc.model.attention import DifferentialAttention, VanillaAttention
from amc.model.block import ImprovedBlock
from amc.model.dropout import Dropout, dropout
from amc.model.encoders import ModalityTransformer, encoder_layer
from amc.model.losses import SymmetricInfoNCE, classification_loss, token_contrastive_loss
from amc.model.moe import SparseMoE, load_balancing_loss

TOL = 1e-5


# --- reference implementations (the previous unfused computation) ---------------------------


def reference_differential(
    attn: DifferentialAttention, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A_i = softmax(Q1 K1^T / sqrt d) - lambda softmax(Q2 K2^T / sqrt d), materialised; A_i V."""
    b, n, dim = x.shape
    h, d = attn.heads, attn.head_dim
    q = attn.q_proj(x).view(b, n, 2 * h, d).transpose(1, 2)
    k = attn.k_proj(x).view(b, n, 2 * h, d).transpose(1, 2)
    v = attn.v_proj(x).view(b, n, h, 2 * d).transpose(1, 2)
    probs = (q @ k.transpose(-1, -2) / math.sqrt(d)).softmax(dim=-1).view(b, h, 2, n, n)
    a = probs[:, :, 0] - attn.lambda_value() * probs[:, :, 1]
    heads = (1.0 - attn.lambda_init) * attn.head_norm(a @ v)
    return attn.out_proj(heads.transpose(1, 2).reshape(b, n, dim)), a.mean(dim=1)


def reference_moe(moe: SparseMoE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``nonzero`` per expert, gathered and index-added expert by expert."""
    shape = x.shape
    tokens = x.reshape(-1, shape[-1])
    probs = moe.gate(tokens).softmax(dim=-1)
    top_p, top_i = probs.topk(moe.top_k, dim=-1)
    weights = top_p / top_p.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(tokens)
    for e, expert in enumerate(moe.experts):
        token_idx, slot = (top_i == e).nonzero(as_tuple=True)
        if token_idx.numel():
            y = expert(tokens[token_idx]) * weights[token_idx, slot].unsqueeze(-1)
            out = out.index_add(0, token_idx, y)
    return out.view(shape), load_balancing_loss(probs, top_i)


def reference_modality_transformer(module: ModalityTransformer, x: torch.Tensor) -> torch.Tensor:
    """``nn.TransformerEncoderLayer``'s own forward, layer after layer."""
    for layer in module.layers:
        x = layer(x)
    return x


def reference_symmetric_info_nce(
    a: torch.Tensor, b: torch.Tensor, temperature: float, max_logits: int = 0
) -> torch.Tensor:
    """Two cross-entropies over the materialised logits, autograd's backward."""
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@contextmanager
def reference_paths():
    """Inside, AMC runs the reference implementations above."""
    with (
        mock.patch.object(
            DifferentialAttention,
            "forward",
            lambda self, x, need_map=True: reference_differential(self, x),
        ),
        mock.patch.object(SparseMoE, "forward", reference_moe),
        mock.patch.object(ModalityTransformer, "forward", reference_modality_transformer),
        mock.patch.object(losses, "_symmetric_info_nce", reference_symmetric_info_nce),
    ):
        yield


# --- helpers -----------------------------------------------------------------------------------


def _grads(module: nn.Module, loss: torch.Tensor, extra: tuple[torch.Tensor, ...] = ()) -> list:
    params = [p for p in module.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, [*params, *extra], allow_unused=True))


def _assert_close_grads(fast: list, ref: list) -> None:
    assert len(fast) == len(ref)
    for g_fast, g_ref in zip(fast, ref, strict=True):
        if g_ref is None:
            assert g_fast is None or torch.count_nonzero(g_fast) == 0
            continue
        torch.testing.assert_close(g_fast, g_ref, rtol=TOL, atol=TOL)


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_fused", [False, True], ids=["explicit", "sdpa"])
def test_differential_attention_matches_reference(use_fused):
    torch.manual_seed(0)
    attn = DifferentialAttention(16, heads=2, lambda_init=0.2)
    attn.use_fused = use_fused
    x = torch.randn(3, 5, 16, requires_grad=True)
    out, amap = attn(x)
    ref_out, ref_map = reference_differential(attn, x)
    torch.testing.assert_close(out, ref_out, rtol=TOL, atol=TOL)
    torch.testing.assert_close(amap, ref_map.detach(), rtol=TOL, atol=TOL)
    assert not amap.requires_grad  # token scores never carry gradient
    weights = torch.randn_like(out)  # a loss that weighs every output differently
    _assert_close_grads(
        _grads(attn, (out * weights).sum(), (x,)), _grads(attn, (ref_out * weights).sum(), (x,))
    )
    skipped, none = attn(x, need_map=False)
    assert none is None
    torch.testing.assert_close(skipped, out, rtol=TOL, atol=TOL)


def test_vanilla_attention_without_map_matches_materialised_map():
    torch.manual_seed(0)
    attn = VanillaAttention(16, heads=4)
    x = torch.randn(2, 6, 16, requires_grad=True)
    with_map, amap = attn(x)
    without_map, none = attn(x, need_map=False)
    assert none is None and amap.shape == (2, 6, 6)
    torch.testing.assert_close(without_map, with_map, rtol=TOL, atol=TOL)
    _assert_close_grads(_grads(attn, without_map.sum(), (x,)), _grads(attn, with_map.sum(), (x,)))


def test_sorted_moe_dispatch_matches_expert_loop():
    torch.manual_seed(0)
    moe = SparseMoE(8, experts=4, top_k=2)
    x = torch.randn(3, 7, 8, requires_grad=True)
    out, balance = moe(x)
    ref_out, ref_balance = reference_moe(moe, x)
    torch.testing.assert_close(out, ref_out, rtol=TOL, atol=TOL)
    torch.testing.assert_close(balance, ref_balance, rtol=TOL, atol=TOL)
    weights = torch.randn_like(out)
    _assert_close_grads(
        _grads(moe, (out * weights).sum() + balance, (x,)),
        _grads(moe, (ref_out * weights).sum() + ref_balance, (x,)),
    )


def test_sorted_moe_handles_experts_without_tokens():
    torch.manual_seed(0)
    moe = SparseMoE(4, experts=6, top_k=1)
    with torch.no_grad():  # route every token to expert 2
        moe.gate.weight.zero_()
        moe.gate.weight[2] = 1.0
    x = torch.rand(2, 3, 4) + 0.1
    out, _ = moe(x)
    torch.testing.assert_close(out, moe.experts[2](x), rtol=TOL, atol=TOL)


def test_encoder_layer_matches_torch_transformer_layer():
    torch.manual_seed(0)
    module = ModalityTransformer(16, heads=4, layers=2, dropout=0.0)
    x = torch.randn(3, 5, 16, requires_grad=True)
    out = module(x)
    ref = reference_modality_transformer(module, x)
    torch.testing.assert_close(out, ref, rtol=TOL, atol=TOL)
    _assert_close_grads(_grads(module, out.sum(), (x,)), _grads(module, ref.sum(), (x,)))
    # the fast layer is a plain function of the torch layer's weights: same state-dict keys
    assert set(module.state_dict()) == set(ModalityTransformer(16, 4, 2).state_dict())
    torch.testing.assert_close(encoder_layer(module.layers[0], x, 0.0, True), module.layers[0](x))


@pytest.mark.parametrize("fuse", [True, False])
def test_amc_training_loss_and_gradients_match_unfused_path(fuse):
    """Whole network, tiny batch, dropout off: loss and every gradient as before."""
    torch.manual_seed(0)
    config = AMCConfig(
        modalities={"a": 10, "b": 12, "c": 9},
        tokens=4,
        hidden=16,
        heads=2,
        layers=2,
        encoder_layers=2,
        experts=4,
        top_k=2,
        dropout=0.0,
    )
    model = AMC(config).train()
    inputs = {k: torch.randn(6, f) for k, f in config.modalities.items()}
    present = torch.ones(6, 3, dtype=torch.bool)
    present[1, 2] = present[4, 0] = False
    labels = torch.tensor([0, 1, 1, 0, 1, 0])

    def loss_and_grads():
        out = model(inputs, present, fuse=fuse)
        aux = sum(v.float() for v in out.aux_losses.values())
        loss = classification_loss(out.logits, labels) + 0.1 * aux
        return loss, _grads(model, loss), out

    loss, grads, out = loss_and_grads()
    with reference_paths():
        ref_loss, ref_grads, ref_out = loss_and_grads()
    torch.testing.assert_close(loss, ref_loss, rtol=TOL, atol=TOL)
    _assert_close_grads(grads, ref_grads)
    assert torch.equal(out.replaced_from, ref_out.replaced_from)
    torch.testing.assert_close(out.token_scores, ref_out.token_scores.detach(), rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    ("rows", "bound"),
    [(9, None), (9, 5.0), (4, None), (1, None)],
    ids=["one-block", "one-block-bounded", "blocks", "row-by-row"],
)
def test_symmetric_info_nce_matches_cross_entropies(rows, bound):
    torch.manual_seed(0)
    a = F.normalize(torch.randn(9, 6), dim=-1).requires_grad_(True)
    b = F.normalize(torch.randn(9, 6), dim=-1)
    if bound is None:
        b = b * 0.7  # the general paths need no normalised rows
    b.requires_grad_(True)
    loss = SymmetricInfoNCE.apply(a, b, 0.2, rows, bound)
    ref = reference_symmetric_info_nce(a, b, 0.2)
    torch.testing.assert_close(loss, ref, rtol=TOL, atol=TOL)
    fast_grads = torch.autograd.grad(3.0 * loss, (a, b))
    ref_grads = torch.autograd.grad(3.0 * ref, (a, b))
    for g_fast, g_ref in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(g_fast, g_ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(("rows", "bound"), [(5, None), (5, 4.0), (2, None), (1, None)])
def test_symmetric_info_nce_backward_passes_gradcheck(rows, bound):
    """The hand-written backward against finite differences, float64."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    a, b = (F.normalize(t, dim=-1).requires_grad_(True) for t in (a, b))

    def loss(a, b):  # normalised inside, so that |S| <= 1 / T also holds for perturbed inputs
        return SymmetricInfoNCE.apply(
            F.normalize(a, dim=-1), F.normalize(b, dim=-1), 0.5, rows, bound
        )

    assert torch.autograd.gradcheck(loss, (a, b))
    # one input without gradient (e.g. a frozen modality) is allowed
    frozen = b.detach()
    assert torch.autograd.gradcheck(lambda a: loss(a, frozen), (a,))


def test_symmetric_info_nce_bounded_path_only_where_float32_holds(monkeypatch):
    """A small temperature (logits up to 1 / T = 100) takes the log-sum-exp path: same loss."""
    from amc.model import losses as module

    calls = []
    real = module._softmax_pair_bounded
    monkeypatch.setattr(
        module, "_softmax_pair_bounded", lambda logits: calls.append(1) or real(logits)
    )
    torch.manual_seed(0)
    a, b = (F.normalize(torch.randn(6, 4), dim=-1) for _ in range(2))
    for temperature, bounded in ((0.1, True), (0.01, False)):
        calls.clear()
        loss = module._symmetric_info_nce(a, b, temperature)
        assert bool(calls) is bounded
        ref = reference_symmetric_info_nce(a, b, temperature)
        torch.testing.assert_close(loss, ref, rtol=TOL, atol=TOL)


def test_symmetric_info_nce_under_bf16_autocast_keeps_float32_statistics():
    """Under autocast (bf16 on CUDA; CPU autocast here) the matmuls may run in bf16, the loss
    and the gradients stay float32 and agree with the cross-entropies under the same autocast."""
    torch.manual_seed(0)
    a, b = (F.normalize(torch.randn(32, 8), dim=-1).requires_grad_(True) for _ in range(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = losses._symmetric_info_nce(a, b, 0.1)
        ref = reference_symmetric_info_nce(a, b, 0.1)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref.float(), rtol=2e-2, atol=2e-2)
    (grad,) = torch.autograd.grad(loss, a)
    (ref_grad,) = torch.autograd.grad(ref, a)
    assert grad.dtype == torch.float32
    torch.testing.assert_close(grad, ref_grad, rtol=5e-2, atol=5e-3)


def test_token_contrastive_loss_matches_reference_with_absent_modalities():
    torch.manual_seed(0)
    tokens = torch.randn(5, 3, 4, 8, requires_grad=True)
    present = torch.ones(5, 3, dtype=torch.bool)
    present[0, 1] = present[3, 2] = False
    for max_logits in (10**6, 40):  # one block per pair; blocks of two rows
        loss = token_contrastive_loss(tokens, present, 0.1, max_logits=max_logits)
        (grad,) = torch.autograd.grad(loss, tokens)
        with reference_paths():
            ref = token_contrastive_loss(tokens, present, 0.1, max_logits=max_logits)
        (ref_grad,) = torch.autograd.grad(ref, tokens)
        torch.testing.assert_close(loss, ref, rtol=TOL, atol=TOL)
        torch.testing.assert_close(grad, ref_grad, rtol=TOL, atol=TOL)


def test_block_returns_no_map_on_request():
    block = ImprovedBlock(16, heads=2, experts=4, top_k=2)
    x = torch.randn(2, 5, 16)
    out, amap, _ = block(x)
    skipped, none, _ = block(x, need_map=False)
    assert amap.shape == (2, 5, 5) and none is None
    torch.testing.assert_close(skipped, out, rtol=TOL, atol=TOL)


# --- the cheap CPU dropout ---------------------------------------------------------------------


def test_cheap_dropout_keeps_expected_fraction_and_scales_survivors():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.1, training=True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9), rtol=1e-4, atol=0)
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased in expectation


def test_cheap_dropout_identity_outside_training_and_seeded():
    x = torch.randn(4, 8, 16)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.count_nonzero(dropout(x, 1.0, training=True)) == 0
    torch.manual_seed(3)
    first = dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(x, 0.3))  # the torch seed fixes the mask
    assert not torch.equal(first, dropout(x, 0.3))


def test_cheap_dropout_gradient_is_mask_times_scale():
    torch.manual_seed(0)
    x = torch.randn(3, 50, requires_grad=True)
    y = dropout(x, 0.25)
    (grad,) = torch.autograd.grad(y.sum(), x)
    expected = (y != 0).float() / (1 - 0.25)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=0)


def test_dropout_module_keeps_nn_dropout_interface():
    module = Dropout(0.2)
    assert isinstance(module, nn.Dropout) and module.p == 0.2
    assert module.state_dict() == {}
    x = torch.randn(5, 7)
    assert torch.equal(module.eval()(x), x)


# --- the fused optimizer -------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW])
def test_fused_optimizer_step_matches_the_per_parameter_loop(optimizer):
    """The training loop's optimizer options (fused kernel on CPU) give the same updates."""
    from amc.runtime import optimizer_options

    options = optimizer_options(torch.device("cpu"))
    assert options == {"fused": True}
    assert optimizer_options(torch.device("meta")) == {}  # elsewhere torch's default
    torch.manual_seed(0)
    fast_model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 2))
    ref_model = copy.deepcopy(fast_model)
    initial = copy.deepcopy(fast_model)
    fast = optimizer(fast_model.parameters(), lr=1e-2, weight_decay=0.01, **options)
    ref = optimizer(ref_model.parameters(), lr=1e-2, weight_decay=0.01, foreach=False)
    for _ in range(4):
        x = torch.randn(8, 6)
        for model, opt in ((fast_model, fast), (ref_model, ref)):
            opt.zero_grad(set_to_none=True)
            model(x).pow(2).mean().backward()
            opt.step()
    for p_fast, p_ref in zip(fast_model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p_fast, p_ref, rtol=TOL, atol=TOL)
    assert not torch.equal(fast_model[0].weight, initial[0].weight)  # the steps did update


@pytest.mark.parametrize("block", [1 << 16, 20], ids=["one-block", "row-blocks"])
def test_bounded_softmax_pair_matches_log_sum_exp_pair(monkeypatch, block):
    """The one-exponential path (E = exp(S), P_row + P_col written over E a block of rows at a
    time) gives the shifted log-sum-exp path's probabilities and log-sum-exp total."""
    monkeypatch.setattr(losses, "_COMBINE_BLOCK", block)  # 20: blocks of 2 rows of 9
    torch.manual_seed(0)
    a, b = (F.normalize(torch.randn(9, 5, dtype=torch.float64), dim=-1) for _ in range(2))
    logits = a @ b.T / 0.1
    probs, lse_sum = losses._softmax_pair_bounded(logits.clone())
    ref_probs, ref_lse_sum = losses._softmax_pair(logits.clone())
    torch.testing.assert_close(probs, ref_probs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lse_sum, ref_lse_sum, rtol=1e-12, atol=1e-12)
    both = logits.softmax(dim=1) + logits.softmax(dim=0)
    torch.testing.assert_close(probs, both, rtol=1e-12, atol=1e-12)
