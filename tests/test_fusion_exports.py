"""What AMC exports is what it computed: the fusion step's s, eta and K; absent modalities 0;
the agreement signal always; no auxiliary losses at evaluation."""

import numpy as np
import pytest
import torch

from amc.inference import run_model
from amc.model import AMC, AMCConfig
from amc.model import network as amc_network
from amc.model.encoders import VolumeEncoder
from amc.model.fusion import alignment_importance, replacement_counts

DIMS = {"lab": 40, "note": 24, "code": 32}
PRESENT = torch.tensor(
    [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 1, 1]]
).bool()


def _model(**overrides) -> AMC:
    torch.manual_seed(0)
    config = dict(
        modalities=DIMS, hidden=32, heads=4, layers=2, tokens=8, experts=4, dropout=0.0
    )
    config.update(overrides)
    return AMC(AMCConfig(**config)).eval()


def _inputs(b: int = 8) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {name: torch.randn(b, d, generator=gen) for name, d in DIMS.items()}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"replace_rule": "paper"},
        {"importance": "alignment"},
        {"importance": "max", "token_score": "linear"},
    ],
)
def test_k_recomputed_from_exported_importance_equals_exported_counts(overrides):
    model = _model(**overrides)
    out = run_model(model, _inputs(), PRESENT, True, torch.device("cpu"), None)
    k = replacement_counts(
        torch.from_numpy(out["importance"]), PRESENT, 8, model.config.replace_rule
    )
    assert np.array_equal(k.numpy(), out["replaced"])
    assert out["replaced"].sum() > 0


def test_replaced_tokens_are_the_bottom_k_of_the_exported_scores():
    model = _model()
    out = model(_inputs(), PRESENT)
    scores, replaced = out.token_scores, out.replaced_from >= 0
    k = replaced.sum(-1)
    for b in range(8):
        for m in range(3):
            if PRESENT[b, m] and k[b, m] > 0:
                lowest = scores[b, m].argsort(stable=True)[: int(k[b, m])]
                assert set(lowest.tolist()) == set(replaced[b, m].nonzero().flatten().tolist())


def test_every_fusion_step_is_exported_and_consistent():
    model = _model(layers=3)
    out = model(_inputs(), PRESENT)
    assert [s.block for s in out.steps] == [0, 1] and all(s.applied for s in out.steps)
    assert out.modality_importance is out.steps[-1].modality_importance
    for step in out.steps:
        k = replacement_counts(step.modality_importance, PRESENT, 8, "complement")
        assert torch.equal(k, step.replace_counts)
        assert torch.equal(k, (step.replaced_from >= 0).sum(-1))
    exported = run_model(model, _inputs(), PRESENT, True, torch.device("cpu"), None)
    assert exported["importance_steps"].shape == (8, 2, 3)
    assert np.array_equal(exported["replaced_steps"][:, -1], exported["replaced"])


def test_without_fusion_importance_is_still_the_fusion_steps_and_nothing_is_replaced():
    model = _model()
    fused, warmup = model(_inputs(), PRESENT), model(_inputs(), PRESENT, fuse=False)
    assert (warmup.replaced_from == -1).all() and not warmup.steps[0].applied
    # the same block-0 map is scored either way: the importance does not depend on ``fuse``
    assert torch.allclose(fused.modality_importance, warmup.modality_importance)


@pytest.mark.parametrize("overrides", [{}, {"layers": 3}, {"token_score": "linear"}])
def test_absent_modalities_score_zero_everywhere(overrides):
    out = _model(**overrides)(_inputs(), PRESENT)
    absent = ~PRESENT
    for step in out.steps:
        assert torch.all(step.token_scores[absent] == 0)
        assert torch.all(step.modality_importance[absent] == 0)
    assert torch.all(out.token_scores[absent] == 0)
    assert torch.all(out.agreement[absent] == 0)
    assert torch.all(out.token_scores[PRESENT].abs().sum(-1) > 0)


def test_agreement_is_exported_whatever_estimator_drives_fusion():
    model = _model(importance="mean")
    inputs = _inputs()
    out = model(inputs, PRESENT)
    encoded = model.encode(inputs, PRESENT) * PRESENT[:, :, None, None]
    assert torch.allclose(out.agreement, alignment_importance(encoded, PRESENT), atol=1e-6)
    driven = _model(importance="alignment")(inputs, PRESENT)
    assert torch.allclose(driven.modality_importance, driven.agreement)


def test_auxiliary_losses_only_in_training_mode_or_on_request(monkeypatch):
    model = _model()
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return torch.zeros(())

    monkeypatch.setattr(amc_network, "token_contrastive_loss", spy)
    monkeypatch.setattr(amc_network, "instance_contrastive_loss", spy)
    assert set(model(_inputs(), PRESENT).aux_losses) == {"balance"} and not calls
    assert set(model(_inputs(), PRESENT, aux=True).aux_losses) == {"instance", "token", "balance"}
    model.train()
    assert set(model(_inputs(), PRESENT).aux_losses) == {"instance", "token", "balance"}
    assert len(calls) == 4


def test_volume_batch_norm_sees_only_present_subjects():
    torch.manual_seed(0)
    present = torch.tensor([True, False, True, True, False])
    x = torch.randn(5, 1, 8, 8, 8)
    other = x.clone()
    other[~present] = 100.0 * torch.randn(2, 1, 8, 8, 8)  # garbage where the MRI is absent

    def run(volumes, mask):
        torch.manual_seed(0)
        enc = VolumeEncoder(tokens=2, dim=8).train()
        out = enc(volumes, mask)
        return out, enc.cnn[1].running_mean.clone()

    base, stats = run(x, present)
    moved, moved_stats = run(other, present)
    alone, alone_stats = run(x[present], None)
    assert torch.allclose(base[present], moved[present], atol=1e-6)
    assert torch.allclose(base[present], alone, atol=1e-6)
    assert torch.allclose(stats, moved_stats) and torch.allclose(stats, alone_stats)
    # and the whole batch absent: no statistics update, finite output
    none_out, none_stats = run(x, torch.zeros(5, dtype=torch.bool))
    assert torch.isfinite(none_out).all() and torch.all(none_stats == 0)
