"""AMC fusion functions (eqs. 2-4) against hand-built maps with known eta, sigma, s and K."""

import math

import pytest
import torch

from amc.model.fusion import (
    modality_importance,
    replace_uninformative_tokens,
    replacement_counts,
    token_scores,
)


def test_token_scores_are_row_maxima():
    attn = torch.tensor([[[[0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]]]])  # (1,1,3,3)
    assert torch.allclose(token_scores(attn), torch.tensor([[[0.7, 0.5, 0.4]]]))


def test_modality_importance_mean_std_max_exact():
    scores = torch.tensor([[[0.2, 0.4], [0.6, 0.6], [0.1, 0.5]]])  # (1, 3, 2)
    mean = modality_importance(scores, stat="mean")
    assert torch.allclose(mean, torch.tensor([[0.3, 0.6, 0.3]]) / 1.2)
    std = modality_importance(scores, stat="std")
    # sigma = [0.1, 0 -> floor, 0.2]
    assert std[0, 1] < 1e-4 and torch.allclose(
        std[0, [0, 2]], torch.tensor([1 / 3, 2 / 3]), atol=1e-4
    )
    mx = modality_importance(scores, stat="max")
    assert torch.allclose(mx, torch.tensor([[0.4, 0.6, 0.5]]) / 1.5)


def test_importance_absent_is_zero_and_present_sum_to_one():
    scores = torch.rand(5, 4, 8)
    present = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 1]])
    s = modality_importance(scores, present.bool())
    assert torch.all(s[~present.bool()] == 0)
    assert torch.allclose(s.sum(-1), torch.ones(5))


def test_negative_differential_scores_are_floored_not_negative():
    scores = torch.tensor([[[-0.2, -0.1], [0.3, 0.5]]])
    s = modality_importance(scores)
    assert torch.all(s >= 0) and torch.allclose(s.sum(), torch.tensor(1.0))
    assert s[0, 0] < 1e-4


def test_replacement_counts_complement_and_paper():
    s = torch.tensor([[0.5, 0.3, 0.2]])
    present = torch.ones(1, 3, dtype=torch.bool)
    # complement: floor((1 - s) * 10 / 2) = floor([2.5, 3.5, 4.0]) = [2, 3, 4]
    assert replacement_counts(s, present, 10, "complement").tolist() == [[2, 3, 4]]
    # paper: floor(s * 10) = [5, 3, 2]
    assert replacement_counts(s, present, 10, "paper").tolist() == [[5, 3, 2]]


def test_replacement_counts_single_present_and_absent():
    s = torch.tensor([[1.0, 0.0], [0.6, 0.4]])
    present = torch.tensor([[True, False], [True, True]])
    k = replacement_counts(s, present, 8, "complement")
    assert k[0, 0] == 0  # only one modality present: nothing to swap with
    assert k[0, 1] == 8  # absent modality: every token imputed
    assert k[1].tolist() == [math.floor(0.4 * 8), math.floor(0.6 * 8)]


def _hand_case():
    # B=1, M=3, N=4, D=2; token values encode (modality, position) so donors are identifiable.
    x = torch.tensor([[[[10.0 * m + n, -(10.0 * m + n)] for n in range(4)] for m in range(3)]])
    scores = torch.tensor(
        [
            [
                [0.9, 0.1, 0.5, 0.2],  # m0: bottom-2 = positions 1, 3
                [0.3, 0.8, 0.1, 0.7],  # m1
                [0.4, 0.6, 0.9, 0.05],  # m2
            ]
        ]
    )
    return x, scores


def test_replaced_tokens_equal_expected_donors_exactly():
    x, scores = _hand_case()
    importance = torch.tensor([[0.5, 0.25, 0.25]])
    # complement, N=4, M=3: K = floor((1 - s) * 4 / 2) = [1, 1, 1]
    new, src = replace_uninformative_tokens(x, scores, importance, rule="complement")
    # m0's lowest is n=1; donors at n=1: m1 (0.8) vs m2 (0.6) -> m1
    # m1's lowest is n=2; donors at n=2: m0 (0.5) vs m2 (0.9) -> m2
    # m2's lowest is n=3; donors at n=3: m0 (0.2) vs m1 (0.7) -> m1
    expected = torch.full((1, 3, 4), -1)
    expected[0, 0, 1], expected[0, 1, 2], expected[0, 2, 3] = 1, 2, 1
    assert torch.equal(src, expected)
    assert torch.equal(new[0, 0, 1], x[0, 1, 1])
    assert torch.equal(new[0, 1, 2], x[0, 2, 2])
    assert torch.equal(new[0, 2, 3], x[0, 1, 3])
    kept = src == -1
    assert torch.equal(new[kept], x[kept])


def test_paper_rule_replaces_more_of_important_modality():
    x, scores = _hand_case()
    importance = torch.tensor([[0.5, 0.25, 0.25]])
    _, src = replace_uninformative_tokens(x, scores, importance, rule="paper")
    assert (src >= 0).sum(-1).tolist() == [[2, 1, 1]]  # floor(s * 4)
    assert src[0, 0, 1] >= 0 and src[0, 0, 3] >= 0  # m0's two lowest: positions 1 and 3


def test_absent_modality_is_never_a_donor_and_is_fully_replaced():
    x, scores = _hand_case()
    scores[0, 1] = 5.0  # absent m1 has the highest scores everywhere: must still not donate
    present = torch.tensor([[True, False, True]])
    importance = modality_importance(scores, present)
    new, src = replace_uninformative_tokens(x, scores, importance, present, "complement")
    assert not (src == 1).any()
    assert (src[0, 1] >= 0).all()  # all four tokens of the absent modality imputed
    assert torch.equal(src[0, 1], torch.tensor([0, 2, 2, 0]))  # best present donor per position


def test_gradients_reach_kept_and_donor_tokens_not_scores():
    x, scores = _hand_case()
    x.requires_grad_(True)
    scores.requires_grad_(True)
    importance = torch.tensor([[0.5, 0.25, 0.25]], requires_grad=True)
    new, src = replace_uninformative_tokens(x, scores, importance, rule="complement")
    new.sum().backward()
    grad = x.grad[0, :, :, 0]
    assert grad[0, 0] == 1  # kept token
    assert grad[0, 1] == 0  # replaced token no longer used
    assert grad[1, 1] == 2  # kept in m1 and donated to m0
    assert scores.grad is None and importance.grad is None


def test_vectorised_matches_loop_reference_on_random_batches():
    torch.manual_seed(0)
    b, m, n, d = 6, 4, 7, 3
    x = torch.randn(b, m, n, d)
    scores = torch.rand(b, m, n)
    present = torch.rand(b, m) > 0.3
    present[:, 0] = True
    s = modality_importance(scores, present)
    new, src = replace_uninformative_tokens(x, scores, s, present, "complement")
    k = replacement_counts(s, present, n, "complement")
    for bi in range(b):
        for mi in range(m):
            order = sorted(range(n), key=lambda j: (scores[bi, mi, j].item(), j))
            bottom = set(order[: int(k[bi, mi])])
            for j in range(n):
                donors = [o for o in range(m) if o != mi and present[bi, o]]
                if j in bottom and donors:
                    best = max(donors, key=lambda o: scores[bi, o, j].item())
                    assert src[bi, mi, j] == best
                    assert torch.equal(new[bi, mi, j], x[bi, best, j])
                else:
                    assert src[bi, mi, j] == -1
                    assert torch.equal(new[bi, mi, j], x[bi, mi, j])


@pytest.mark.parametrize("bad", ["median", ""])
def test_unknown_importance_stat_is_rejected(bad):
    with pytest.raises(ValueError, match="fusion.importance"):
        modality_importance(torch.rand(1, 2, 3), stat=bad)


# ------------------------------------------------------------------ deficit rule, pooling
def test_deficit_rule_uniform_replaces_nothing_and_zero_importance_everything():
    present = torch.ones(3, 3, dtype=torch.bool)
    s = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [0.6, 0.25, 0.15]])
    k = replacement_counts(s, present, 10, "deficit")
    assert k[0].tolist() == [0, 0, 0]  # uniform share: nothing replaced
    assert k[1].tolist() == [0, 0, 10]  # worthless modality rebuilt entirely
    # 1 - 3 s: [-0.8 -> 0, 0.25 -> floor(2.5) = 2, 0.55 -> floor(5.5) = 5]
    assert k[2].tolist() == [0, 2, 5]


def test_deficit_rule_missing_and_single_modalities():
    s = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.9, 0.1, 0.0]])
    present = torch.tensor([[1, 0, 0], [1, 0, 1], [1, 1, 0]]).bool()
    k = replacement_counts(s, present, 8, "deficit")
    assert k[0].tolist() == [0, 8, 8]  # one present: nothing to swap with; absent imputed
    assert k[1].tolist() == [0, 8, 0]  # share relative to the 2 present modalities (1/2)
    # M_present = 2: 1 - 2 * 0.1 = 0.8 -> floor(6.4) = 6
    assert k[2].tolist() == [0, 6, 8]


def test_zero_importance_modality_is_rebuilt_entirely_from_donors():
    x, scores = _hand_case()
    s = torch.tensor([[0.5, 0.5, 0.0]])
    x_new, donors = replace_uninformative_tokens(x, scores, s, rule="deficit")
    assert (donors[0, :2] == -1).all() and (donors[0, 2] >= 0).all()
    for n in range(4):  # each position comes from the best other modality at that position
        best = int(scores[0, :2, n].argmax())
        assert donors[0, 2, n] == best and torch.equal(x_new[0, 2, n], x[0, best, n])


def test_importance_pooling_zero_weight_contributes_nothing_uniform_is_identity():
    from amc.model.fusion import importance_pooling

    pooled = torch.randn(2, 3, 4)
    uniform = torch.full((2, 3), 1 / 3)
    assert torch.allclose(importance_pooling(pooled, uniform), pooled, atol=1e-6)
    w = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    out = importance_pooling(pooled, w)
    assert torch.all(out[0, 2] == 0)
    assert torch.allclose(out[1], pooled[1] * torch.tensor([0.6, 0.9, 1.5]).unsqueeze(-1))


# --------------------------------------------------------- late-fusion heads inside AMC
def test_importance_late_fusion_uniform_equals_late_fusion_and_zero_weight_is_ignored():
    from amc.baselines.late import _log_mean
    from amc.model.fusion import importance_late_fusion

    torch.manual_seed(0)
    logits = torch.randn(4, 3, 5)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1]]).bool()
    uniform = torch.ones(4, 3)
    late = _log_mean(torch.log_softmax(logits, -1), present)
    assert torch.allclose(importance_late_fusion(logits, uniform, present), late, atol=1e-5)
    hazard = importance_late_fusion(logits, uniform, present, "survival")
    mean_hazard = (torch.sigmoid(logits) * present.unsqueeze(-1)).sum(1) / present.sum(1, True)
    assert torch.allclose(torch.sigmoid(hazard), mean_hazard, atol=1e-5)
    # weights are renormalised over present modalities: the result is a weighted probability mean
    w = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.9, 0.4], [0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    probs = torch.softmax(importance_late_fusion(logits, w, present), -1)
    wp = w * present
    expected = (torch.softmax(logits, -1) * (wp / wp.sum(1, True)).unsqueeze(-1)).sum(1)
    assert torch.allclose(probs, expected, atol=1e-5)
    # a zero-weight (row 3, m2) or absent (row 1, m1) modality cannot move the fused logits
    moved = logits.clone()
    moved[3, 2] = 100.0 * torch.randn(5)
    moved[1, 1] = 100.0 * torch.randn(5)
    before = importance_late_fusion(logits, w, present)
    assert torch.equal(importance_late_fusion(moved, w, present), before)


def test_importance_late_fusion_no_weight_gives_zero_logits_and_finite_gradients():
    from amc.model.fusion import importance_late_fusion

    logits = torch.randn(2, 3, 4, requires_grad=True)
    present = torch.tensor([[0, 0, 0], [1, 1, 0]]).bool()
    weights = torch.tensor([[0.3, 0.3, 0.4], [0.0, 1.0, 0.0]])
    out = importance_late_fusion(logits, weights, present)
    assert torch.equal(out[0], torch.zeros(4))
    assert torch.allclose(out[1], torch.log_softmax(logits[1, 1], -1), atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad[1, 0], torch.zeros(4))  # weight 0: no gradient either
    with pytest.raises(ValueError, match="classification, survival"):
        importance_late_fusion(logits, weights, present, "regression")


def test_deficit_weights_full_at_uniform_share_zero_at_zero_importance_absent_zero():
    from amc.model.fusion import deficit_weights

    importance = torch.tensor(
        [[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]
    )
    present = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 0]]).bool()
    w = deficit_weights(importance, present)
    assert torch.equal(w[0], torch.ones(3))  # uniform importances: plain late fusion
    assert torch.equal(w[1], torch.tensor([1.0, 1.0, 0.0]))  # importance 0: dropped
    # linear below the uniform share: s * M_present (0.3 * 3, 0.1 * 3), full weight above it
    assert torch.allclose(w[2], torch.tensor([1.0, 0.9, 0.3]), atol=2e-4)
    assert torch.equal(w[3], torch.tensor([1.0, 0.0, 1.0]))  # absent: 0; shares of M_present=2
    assert torch.equal(w[4], torch.tensor([0.0, 1.0, 0.0]))  # a sole modality keeps full weight
    assert (w.amax(dim=1) == 1).all()  # some present modality always keeps full weight
