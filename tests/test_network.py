"""The AMC network end to end: API, fusion switches, missing modalities, training, determinism."""

import pytest
import torch

from amc.model import AMC, AMCConfig
from amc.model.losses import classification_loss
from amc.training.seed import seed_everything

DIMS = {"lab": 40, "note": 24, "code": 32}


def small_config(**overrides) -> AMCConfig:
    base = dict(
        modalities=DIMS,
        num_classes=2,
        hidden=32,
        heads=4,
        layers=2,
        tokens=8,
        experts=4,
        top_k=2,
        dropout=0.0,
    )
    base.update(overrides)
    return AMCConfig(**base)


def batch(b=6):
    return {name: torch.randn(b, d) for name, d in DIMS.items()}


def test_output_shapes_and_importance_rows():
    model = AMC(small_config())
    present = torch.tensor(
        [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]]
    ).bool()
    out = model(batch(), present)
    assert out.logits.shape == (6, 2)
    assert out.modality_importance.shape == (6, 3) and out.token_scores.shape == (6, 3, 8)
    assert out.replaced_from.shape == (6, 3, 8) and out.replaced_from.dtype == torch.int64
    assert torch.all(out.modality_importance[~present] == 0)
    assert torch.allclose(out.modality_importance.sum(-1), torch.ones(6), atol=1e-5)
    assert set(out.aux_losses) == {"instance", "token", "balance"}
    # absent modalities never donate, and are fully imputed
    for b in range(6):
        for m in range(3):
            if not present[b, m]:
                assert not (out.replaced_from[b] == m).any()
                assert (out.replaced_from[b, m] >= 0).all()


def test_no_fusion_during_warmup_or_when_disabled():
    model = AMC(small_config())
    assert (model(batch(), fuse=False).replaced_from == -1).all()
    off = AMC(small_config(fusion=False))
    assert (off(batch()).replaced_from == -1).all()
    assert (model(batch()).replaced_from >= 0).any()


@pytest.mark.parametrize(
    "overrides",
    [
        dict(attention="vanilla"),
        dict(ffn="dense"),
        dict(token_score="linear"),
        dict(importance="std", replace_rule="paper"),
        dict(layers=3, encoder_layers=0),
    ],
)
def test_ablation_variants_run_and_backprop(overrides):
    model = AMC(small_config(**overrides))
    out = model(batch())
    loss = classification_loss(out.logits, torch.randint(0, 2, (6,))) + sum(out.aux_losses.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) > len(grads) // 2
    if overrides.get("token_score") == "linear":
        assert model.scorer.weight.grad.abs().sum() > 0


def test_volume_and_bag_encoders():
    config = AMCConfig(
        modalities={"mri": (1, 16, 16, 16), "wsi": 12, "rna": 30},
        encoders={"wsi": "bag", "rna": "query"},
        task="survival",
        num_bins=4,
        hidden=32,
        heads=4,
        tokens=4,
        experts=4,
    )
    model = AMC(config)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    mask[2] = False  # empty bag must not produce NaN
    inputs = {
        "mri": torch.randn(3, 1, 16, 16, 16),
        "wsi": (torch.randn(3, 5, 12), mask),
        "rna": torch.randn(3, 30),
    }
    out = model(inputs)
    assert out.logits.shape == (3, 4) and torch.isfinite(out.logits).all()


def test_same_seed_same_output():
    def run():
        seed_everything(7)
        model = AMC(small_config(dropout=0.1))
        model.train()
        return model(batch()).logits

    assert torch.equal(run(), run())


def test_trains_to_high_accuracy_on_separable_toy_problem():
    seed_everything(0)
    n = 256
    y = torch.randint(0, 2, (n,))
    signal = (y.float() * 2 - 1).unsqueeze(1)
    data = {name: torch.randn(n, d) * 0.5 for name, d in DIMS.items()}
    data["lab"][:, :4] += signal * 1.5  # each modality carries part of the label
    data["note"][:, :4] += signal * 1.0
    model = AMC(small_config(dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(12):
        perm = torch.randperm(n)
        for i in range(0, n, 32):
            idx = perm[i : i + 32]
            out = model({k: v[idx] for k, v in data.items()}, fuse=epoch >= 2)
            loss = classification_loss(out.logits, y[idx]) + 0.1 * sum(out.aux_losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(data).logits.argmax(-1) == y).float().mean().item()
    assert acc > 0.9


def test_vector_tokenizer_projects_each_sub_vector_with_its_own_weights():
    from amc.model.encoders import VectorTokenizer

    tok = VectorTokenizer(in_dim=10, tokens=4, dim=6)  # chunks of 3, last one zero-padded
    x = torch.randn(2, 10)
    out = tok(x)
    padded = torch.nn.functional.pad(x, (0, 2)).view(2, 4, 3)
    for p in range(4):
        expected = padded[:, p] @ tok.proj.weight[p] + tok.proj.bias[p] + tok.pos[p]
        assert torch.allclose(out[:, p], expected, atol=1e-6)
    assert not torch.allclose(tok.proj.weight[0], tok.proj.weight[1])


def test_importance_pooling_zero_weight_modality_cannot_move_the_logits(monkeypatch):
    from amc.model import network as amc_network

    def fixed_agreement(x, present):
        return torch.tensor([0.5, 0.5, 0.0]).expand(x.shape[0], 3)

    monkeypatch.setattr(amc_network, "alignment_importance", fixed_agreement)
    model = AMC(small_config(importance="alignment", pooling="importance", fusion=False)).eval()
    inputs = batch()
    base = model(inputs).logits
    moved = dict(inputs, code=inputs["code"] * 50 + 3)  # the zero-weight modality
    assert torch.allclose(model(moved).logits, base, atol=1e-6)
    moved = dict(inputs, lab=inputs["lab"] * 50 + 3)  # a weighted modality does move them
    assert not torch.allclose(model(moved).logits, base, atol=1e-3)


def test_deficit_rule_and_importance_pooling_train():
    model = AMC(small_config(replace_rule="deficit", pooling="importance"))
    out = model(batch())
    loss = classification_loss(out.logits, torch.randint(0, 2, (6,))) + sum(out.aux_losses.values())
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="concat, importance"):
        AMC(small_config(pooling="mean"))


def test_deficit_pooling_zero_importance_modality_cannot_move_the_logits(monkeypatch):
    from amc.model import network as amc_network

    def fixed_agreement(x, present):
        return torch.tensor([0.5, 0.5, 0.0]).expand(x.shape[0], 3)

    monkeypatch.setattr(amc_network, "alignment_importance", fixed_agreement)
    seed_everything(0)
    model = AMC(small_config(importance="alignment", pooling="deficit", fusion=False)).eval()
    seed_everything(0)
    concat = AMC(small_config(importance="alignment", fusion=False)).eval()
    inputs = batch()
    out = model(inputs)
    moved = dict(inputs, code=inputs["code"] * 50 + 3)  # the zero-importance modality
    assert torch.allclose(model(moved).logits, out.logits, atol=1e-6)
    moved = dict(inputs, lab=inputs["lab"] * 50 + 3)  # a weighted modality does move them
    assert not torch.allclose(model(moved).logits, out.logits, atol=1e-3)
    # above the uniform share: full weight (0.5 * 3 -> 1), not x1.5 as importance pooling gives
    assert torch.count_nonzero(out.pooled[:, 2]) == 0
    assert torch.equal(out.pooled[:, :2], concat(inputs).pooled[:, :2])


@pytest.mark.parametrize("fusion", [True, False])
def test_deficit_pooling_uniform_importance_equals_concat(monkeypatch, fusion):
    # Every modality at the uniform share keeps full weight: the head sees what concat gives it.
    from amc.model import network as amc_network

    monkeypatch.setattr(
        amc_network, "alignment_importance", lambda x, present: torch.full((x.shape[0], 3), 1 / 3)
    )
    seed_everything(0)
    concat = AMC(small_config(importance="alignment", fusion=fusion)).eval()
    seed_everything(0)
    deficit = AMC(small_config(importance="alignment", pooling="deficit", fusion=fusion)).eval()
    inputs = batch()
    assert torch.equal(deficit(inputs).logits, concat(inputs).logits)


def test_deficit_pooling_absent_modality_cannot_move_the_logits():
    # As with importance pooling: an absent modality's pooled vector is zeroed before the head,
    # whatever its (zero-filled) input and whatever fusion imputed into it.
    model = AMC(small_config(pooling="deficit")).eval()
    present = torch.tensor([[1, 1, 0]] * 6).bool()
    inputs = batch()
    out = model(inputs, present)
    assert torch.count_nonzero(out.pooled[:, 2]) == 0
    moved = dict(inputs, code=inputs["code"] * 50 + 3)
    assert torch.allclose(model(moved, present).logits, out.logits, atol=1e-6)
    model.train()
    train_out = model(inputs, present)
    loss = classification_loss(train_out.logits, torch.randint(0, 2, (6,)))
    loss = loss + sum(train_out.aux_losses.values())
    loss.backward()
    assert torch.isfinite(loss) and model.head.net[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("pooling", ["importance_logits", "deficit_logits"])
def test_importance_logits_zero_weight_modality_cannot_move_the_logits(monkeypatch, pooling):
    from amc.model import network as amc_network

    def fixed_agreement(x, present):
        return torch.tensor([0.5, 0.5, 0.0]).expand(x.shape[0], 3)

    monkeypatch.setattr(amc_network, "alignment_importance", fixed_agreement)
    config = small_config(importance="alignment", pooling=pooling, fusion=False)
    model = AMC(config).eval()
    assert not hasattr(model, "head") and len(model.modality_heads) == 3
    inputs = batch()
    out = model(inputs)
    assert out.logits.shape == (6, 2) and out.modality_logits.shape == (6, 3, 2)
    moved = dict(inputs, code=inputs["code"] * 50 + 3)  # the zero-weight modality
    assert torch.allclose(model(moved).logits, out.logits, atol=1e-6)
    moved = dict(inputs, lab=inputs["lab"] * 50 + 3)  # a weighted modality does move them
    assert not torch.allclose(model(moved).logits, out.logits, atol=1e-3)
    # the mixing weights: the importance itself, or its deficit weights (0.5 * 3 -> 1, 0 -> 0)
    expected = [0.5, 0.5, 0.0] if pooling == "importance_logits" else [1.0, 1.0, 0.0]
    assert torch.allclose(out.head_weights, torch.tensor(expected).expand(6, 3))


def test_deficit_logits_equal_plain_late_fusion_for_uniform_importance(monkeypatch):
    # Uniform importance: every present modality keeps full weight, the heads' probabilities are
    # averaged as late fusion does (the deficit mixing only ever drops modalities below 1/M).
    from amc.baselines.late import _log_mean
    from amc.model import network as amc_network

    monkeypatch.setattr(
        amc_network, "alignment_importance", lambda x, present: torch.full((x.shape[0], 3), 1 / 3)
    )
    model = AMC(small_config(importance="alignment", pooling="deficit_logits", fusion=False))
    out = model.eval()(batch())
    late = _log_mean(torch.log_softmax(out.modality_logits, -1), torch.ones(6, 3).bool())
    assert torch.allclose(out.logits, late, atol=1e-5)


@pytest.mark.parametrize("pooling", ["importance_logits", "deficit_logits"])
@pytest.mark.parametrize("task", ["classification", "survival"])
def test_importance_logits_trains_every_modality_head(task, pooling):
    model = AMC(small_config(pooling=pooling, task=task, num_bins=4))
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]])
    out = model(batch(), present.bool())
    width = 2 if task == "classification" else 4
    assert out.logits.shape == (6, width) and out.modality_logits.shape == (6, 3, width)
    (out.logits.float().pow(2).mean() + sum(out.aux_losses.values())).backward()
    for head in model.modality_heads:
        grad = head.net[-1].weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("pooling", ["concat", "importance", "deficit"])
def test_shared_head_poolings_feed_one_head_on_the_concatenated_pooled_vectors(pooling):
    model = AMC(small_config(pooling=pooling)).eval()
    assert not hasattr(model, "modality_heads")
    out = model(batch())
    assert out.modality_logits is None
    assert torch.allclose(out.logits, model.head(out.pooled.reshape(6, -1)), atol=1e-6)


def test_model_and_params_schema_offer_the_same_fusion_choices():
    """AMCConfig's type hints list the choices again (for readers and type checkers); a choice
    added to the schema and not to them, or the reverse, would be refused by the model or
    unreachable from params. The model validates ``pooling`` against the schema's own tuple."""
    from dataclasses import fields
    from typing import get_args, get_type_hints

    from amc.config import POOLINGS, FusionParams

    hints = get_type_hints(AMCConfig)
    schema = {f.name: f.metadata["rule"].choices for f in fields(FusionParams)}
    for name in ("importance", "replace_rule", "pooling"):
        assert set(get_args(hints[name])) == set(schema[name]), name
    assert tuple(schema["pooling"]) == POOLINGS
    with pytest.raises(ValueError, match="fusion.pooling"):
        AMC(small_config(pooling="median"))
