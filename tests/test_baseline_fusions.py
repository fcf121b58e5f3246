"""Each compared method's fusion, checked by hand on tiny inputs: what a wrong implementation of
that method's equations would get wrong."""

import itertools
import math

import torch
from torch.nn import functional as F

from amc.baselines import build_model
from amc.baselines.flexmoe import combinations
from amc.baselines.fusemoe import LaplaceMoE, LaplaceRouter
from amc.baselines.limoe import limoe_entropy_losses
from amc.model import AMCConfig
from amc.model.moe import load_balancing_loss

TINY = dict(hidden=8, heads=2, layers=1, tokens=2, experts=4, top_k=2, dropout=0.0)
DIMS = {"a": 4, "b": 3, "c": 5}


def config(**overrides) -> AMCConfig:
    return AMCConfig(modalities=DIMS, **{**TINY, **overrides})


def batch(b: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(b, d, generator=g) for k, d in DIMS.items()}


PRESENT = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)


def test_tf_is_an_mlp_of_the_explicit_outer_product_of_one_extended_vectors():
    torch.manual_seed(0)
    model = build_model("tf", config(), {"width": 2}).eval()
    x = batch()
    with torch.no_grad():
        z = model.embeddings(x, PRESENT)
        expected = torch.zeros(3, 27)
        for r in range(3):
            ext = [torch.cat([zm[r], torch.ones(1)]) for zm in z]
            for pos, (i, j, k) in enumerate(itertools.product(range(3), repeat=3)):
                expected[r, pos] = ext[0][i] * ext[1][j] * ext[2][k]
        assert torch.all(z[1][1] == 0)  # absent modality b of patient 1: z = 0, z' = [0, 0, 1]
        torch.testing.assert_close(model(x, PRESENT).logits, model.head(model.post(expected)))
        # the unimodal terms survive: the last entry is the constant 1, then z_c, ...
        torch.testing.assert_close(expected[:, -1], torch.ones(3))
        torch.testing.assert_close(expected[:, 24:26], z[2])
        torch.testing.assert_close(expected[:, [8, 17]], z[0])


def test_mult_stream_j_to_i_depends_on_j_and_i_only():
    torch.manual_seed(0)
    model = build_model("mult", config(), {"cross_layers": 2}).eval()
    x, everything = batch(), torch.ones(3, 3, dtype=torch.bool)
    changed = dict(x, c=x["c"] + 1.0)  # modality index 2
    with torch.no_grad():
        before = model.streams(model.encoders(x, everything), everything)
        after = model.streams(model.encoders(changed, everything), everything)
        dropped = everything.clone()
        dropped[:, 2] = False
        without_c = model.streams(model.encoders(x, dropped), dropped)
    assert set(before) == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)}
    for (j, i), stream in before.items():
        if 2 in (j, i):
            assert not torch.allclose(stream, after[(j, i)]), (j, i)
        else:
            torch.testing.assert_close(stream, after[(j, i)])
    # With c absent, a target gains nothing from it but keeps its own tokens.
    assert not torch.allclose(without_c[(2, 0)], before[(2, 0)])
    assert without_c[(2, 0)].abs().sum() > 0


def _h(*p: float) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


def test_limoe_entropy_losses_match_a_hand_computation():
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [1.0, 0.0]])
    modality = torch.tensor([0, 0, 1, 1])
    local, global_ = limoe_entropy_losses(probs, modality, 2, threshold=math.log(2))
    expected_local = ((_h(0.9, 0.1) + _h(0.5, 0.5)) / 2 + (_h(0.2, 0.8) + 0.0) / 2) / 2
    expected_global = ((math.log(2) - _h(0.7, 0.3)) + (math.log(2) - _h(0.6, 0.4))) / 2
    assert math.isclose(local.item(), expected_local, rel_tol=1e-5)
    assert math.isclose(global_.item(), expected_global, rel_tol=1e-5)
    # the threshold: no global penalty once the marginal entropy exceeds tau
    _, thresholded = limoe_entropy_losses(probs, modality, 2, threshold=0.65)
    assert math.isclose(thresholded.item(), (0.65 - _h(0.7, 0.3)) / 2, rel_tol=1e-5)
    model = build_model("limoe", config(), {"local_weight": 0.5, "global_weight": 0.0})
    aux = model(batch(), PRESENT).aux_losses
    assert aux["limoe_global"] == 0 and aux["limoe_local"] > 0 and aux["balance"] >= 1 - 1e-5


def test_fusemoe_laplace_gate_uses_distances_not_dot_products():
    router = LaplaceRouter(dim=2, experts=3, top_k=2)
    with torch.no_grad():
        router.keys.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]))
    weights, index, _ = router(torch.tensor([[0.9, 0.1]]))
    d0, d1 = math.hypot(0.9, 0.1), math.hypot(0.1, 0.1)
    # nearest keys are experts 1 and 0 (a dot-product gate would pick 1 and 2)
    assert index.tolist() == [[1, 0]]
    w1 = math.exp(-d1) / (math.exp(-d1) + math.exp(-d0))
    torch.testing.assert_close(weights, torch.tensor([[w1, 1 - w1]]))


def test_fusemoe_routes_each_modality_with_its_own_router():
    torch.manual_seed(0)
    moe = LaplaceMoE(dim=4, modalities=2, experts=3, top_k=1)
    x, modality = torch.randn(6, 4), torch.tensor([0, 0, 0, 1, 1, 1])
    with torch.no_grad():
        before, _ = moe(x, modality)
        moe.routers[1].keys.copy_(-moe.routers[1].keys + 5.0)
        after, _ = moe(x, modality)
    torch.testing.assert_close(before[:3], after[:3])
    assert not torch.allclose(before[3:], after[3:])


def test_flexmoe_bank_and_routing_follow_the_modality_combination():
    torch.manual_seed(0)
    model = build_model("flexmoe", config())
    assert combinations(3) == [(0, 1, 2), (0, 1), (0, 2), (1, 2), (0,), (1,), (2,)]
    assert len(model.moes[0].experts) == 7  # one expert per combination
    combo = model.combination_index(PRESENT)
    assert combo.tolist() == [0, 2, 5]  # {a,b,c}, {a,c}, {b}
    tokens = torch.randn(3, 3, 2, 8)
    filled = model.fill_missing(tokens, PRESENT)
    torch.testing.assert_close(filled[1, 1], model.bank[2, 1].detach())
    torch.testing.assert_close(filled[2, 0], model.bank[5, 0].detach())
    torch.testing.assert_close(filled[2, 2], model.bank[5, 2].detach())
    torch.testing.assert_close(filled[PRESENT], tokens[PRESENT])
    # G-router balance on the full patient, S-router cross-entropy to the combination's expert
    h = torch.randn(3, 6, 8)
    moe = model.moes[0]
    logits = moe.gate(h)
    full = logits[0].softmax(-1)
    expected = load_balancing_loss(full, full.topk(2, dim=-1).indices) + F.cross_entropy(
        logits[1:].reshape(-1, 7), torch.tensor([2] * 6 + [5] * 6)
    )
    torch.testing.assert_close(model.router_loss(moe, h, combo), expected)


def test_maggate_shift_is_zero_without_gate_or_without_other_modalities_and_bounded():
    torch.manual_seed(0)
    model = build_model("maggate", config(), {"main": "b", "beta": 0.5})
    assert model.main == 1 and model.others == [0, 2]
    main, others = torch.randn(3, 2, 8), torch.randn(3, 3, 8)
    everything = torch.ones(3, 3, dtype=torch.bool)
    shifted = model.shift(main, others, everything)
    assert not torch.allclose(shifted, main)
    # ||alpha H|| <= beta ||h|| for every token
    assert torch.all((shifted - main).norm(dim=-1) <= 0.5 * main.norm(dim=-1) + 1e-5)
    only_main = torch.tensor([[0, 1, 0]] * 3, dtype=torch.bool)
    torch.testing.assert_close(model.shift(main, others, only_main), main)
    with torch.no_grad():
        for gate in model.gates.values():
            gate.weight.zero_()
            gate.bias.zero_()
    torch.testing.assert_close(model.shift(main, others, everything), main)


def test_muse_patients_interact_only_through_shared_modality_nodes():
    torch.manual_seed(0)
    model = build_model("muse", config(), {"graph_layers": 2}).eval()
    edges = torch.randn(3, 3, 8)
    # patient 0 has a only, patient 1 has b only, patient 2 has a and c
    adjacency = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)
    with torch.no_grad():
        base = model.represent(edges, adjacency)
        other = edges.clone()
        other[1, 1] += 2.0  # patient 1's only edge: shares no modality with patient 0
        assert torch.allclose(model.represent(other, adjacency)[0], base[0])
        other = edges.clone()
        other[2, 0] += 2.0  # patient 2's edge to a, which patient 0 also has
        assert not torch.allclose(model.represent(other, adjacency)[0], base[0])
        other = edges.clone()
        other[0, 1] += 2.0  # a non-edge of patient 0 (modality b missing) changes nothing
        torch.testing.assert_close(model.represent(other, adjacency), base)
        one_layer = build_model("muse", config(), {"graph_layers": 1}).eval()
        other = edges.clone()
        other[2, 0] += 2.0  # one layer: no patient-modality-patient path yet
        torch.testing.assert_close(
            one_layer.represent(other, adjacency)[0], one_layer.represent(edges, adjacency)[0]
        )
    view = model.drop_edges(torch.ones(50, 3, dtype=torch.bool))
    assert view.any(dim=1).all() and not view.all()  # edges dropped, never a whole patient
    assert not (model.drop_edges(adjacency) & ~adjacency).any()


def test_late_fusion_is_the_mean_of_present_single_modality_predictions():
    torch.manual_seed(0)
    for task, link in (("classification", lambda v: v.softmax(-1)), ("survival", torch.sigmoid)):
        model = build_model("late", config(task=task, num_bins=3)).eval()
        x = batch()
        with torch.no_grad():
            single = link(model.per_modality_logits(x, PRESENT))  # (B, M, K)
            fused = link(model(x, PRESENT).logits)
        for r in range(3):
            torch.testing.assert_close(fused[r], single[r, PRESENT[r]].mean(dim=0))


def test_early_fusion_feeds_the_concatenated_encoder_features_to_one_mlp():
    torch.manual_seed(0)
    model = build_model("early", config()).eval()
    x = batch()
    with torch.no_grad():
        parts = [
            model.encoders.encoders[n](x[n]).flatten(1) * PRESENT[:, m : m + 1]
            for m, n in enumerate(DIMS)
        ]
        expected = torch.cat([*parts, PRESENT.float()], dim=-1)
        torch.testing.assert_close(model.features(x, PRESENT), expected)
        torch.testing.assert_close(model(x, PRESENT).logits, model.head(model.mlp(expected)))


def test_single_modality_ignores_every_other_modality():
    torch.manual_seed(0)
    model = build_model("single", config(), {"modality": "b"}).eval()
    x = batch()
    with torch.no_grad():
        out = model(x, PRESENT).logits
        others = dict(x, a=x["a"] + 5.0, c=-x["c"])
        flipped = PRESENT.clone()
        flipped[:, [0, 2]] = ~flipped[:, [0, 2]]  # other modalities' presence changes too
        torch.testing.assert_close(model(others, flipped).logits, out)
        # patient 1 lacks b: its prediction is the learned "missing" one
        torch.testing.assert_close(out[1], model.head(model.missing[None])[0])
