"""Every compared method: the factory, absent modalities, all encoder kinds and both tasks, a toy
task learned, and training through the shared loop with a checkpoint that round-trips."""

import numpy as np
import pytest
import torch

from amc.baselines import METHODS, build_model
from amc.data.cohort import load_cohort
from amc.data.splits import make_splits
from amc.model import AMC, AMCConfig
from amc.model.losses import classification_loss
from amc.training.loop import (
    TrainSettings,
    load_model,
    model_inputs,
    predict,
    run_model,
    train_model,
)
from amc.training.seed import seed_everything
from tests.helpers import toy_dataset

NAMES = list(METHODS)
TINY = dict(hidden=8, heads=2, layers=1, tokens=2, experts=4, top_k=2, dropout=0.0)
MIXED = {"vec": 6, "bag": 5, "query": 7, "mri": (1, 8, 8, 8)}
KINDS = {"bag": "bag", "query": "query"}


def mixed_batch(b: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "vec": torch.randn(b, 6, generator=g),
        "bag": (torch.randn(b, 4, 5, generator=g), torch.rand(b, 4, generator=g) > 0.3),
        "query": torch.randn(b, 7, generator=g),
        "mri": torch.randn(b, 1, 8, 8, 8, generator=g),
    }


PRESENT = torch.tensor(
    [[1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool
)


def test_factory_names_amc_and_errors():
    assert NAMES == [
        "tf",
        "mult",
        "limoe",
        "fusemoe",
        "flexmoe",
        "maggate",
        "muse",
        "late",
        "early",
        "single",
    ]
    config = AMCConfig(modalities={"a": 4, "b": 3}, **TINY)
    assert isinstance(build_model("amc", config), AMC)
    with pytest.raises(ValueError, match="tf.*mult"):
        build_model("nope", config)
    with pytest.raises(ValueError, match="experts"):
        build_model("limoe", config, {"expert": 4})  # misspelt option names the valid ones
    with pytest.raises(ValueError, match="lab"):
        build_model("single", config, {"modality": "lab"})


@pytest.mark.parametrize("task", ["classification", "survival"])
@pytest.mark.parametrize("name", NAMES)
def test_absent_modalities_never_leak_and_all_encoders_work(name, task):
    torch.manual_seed(0)
    config = AMCConfig(modalities=MIXED, encoders=KINDS, task=task, num_bins=3, **TINY)
    model = build_model(name, config).eval()
    x = mixed_batch()
    with torch.no_grad():
        out = model(x, PRESENT)
        assert out.logits.shape == (5, 2 if task == "classification" else 3)
        assert torch.isfinite(out.logits).all()
        assert out.modality_importance is None and out.replaced_from is None
        # Overwrite every absent input with other values: nothing may change.
        noisy = mixed_batch(seed=1)
        changed = {}
        for m, key in enumerate(MIXED):
            absent = ~PRESENT[:, m]
            if key == "bag":
                bag = torch.where(absent[:, None, None], noisy[key][0], x[key][0])
                mask = torch.where(absent[:, None], noisy[key][1], x[key][1])
                changed[key] = (bag, mask)
            else:
                shape = (-1, *([1] * (x[key].dim() - 1)))
                changed[key] = torch.where(absent.view(shape), noisy[key], x[key])
        torch.testing.assert_close(model(changed, PRESENT).logits, out.logits)
        # ...while a present input does change its patient's prediction (the check has power).
        x["vec"] = x["vec"].clone()
        x["vec"][0] += 3.0
        assert not torch.allclose(model(x, PRESENT).logits[0], out.logits[0])


def toy_task(n: int, seed: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Two vector modalities both carrying the label; modality b is absent for ~25%."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    sign = (2 * y - 1).float()[:, None]
    a = torch.randn(n, 6, generator=g)
    b = torch.randn(n, 5, generator=g)
    a[:, :2] += 1.5 * sign
    b[:, :2] += 1.5 * sign
    present = torch.ones(n, 2, dtype=torch.bool)
    present[:, 1] = torch.rand(n, generator=g) > 0.25
    b = b * present[:, 1:].float()
    return {"a": a, "b": b}, present, y


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_separable_toy_task(name):
    seed_everything(0)
    config = AMCConfig(modalities={"a": 6, "b": 5}, **{**TINY, "hidden": 16})
    model = build_model(name, config)
    x, present, y = toy_task(96, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(25):
        out = model(x, present)
        loss = classification_loss(out.logits, y) + sum(out.aux_losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x_test, p_test, y_test = toy_task(300, seed=1)
    with torch.no_grad():
        accuracy = (model.eval()(x_test, p_test).logits.argmax(-1) == y_test).float().mean()
    assert accuracy > 0.85, f"{name}: test accuracy {accuracy:.2f} on a separable task"


def _cohort(tmp_path, task):
    files, labels = toy_dataset(tmp_path, n=60, task=task, missing=0.2, signal=3.0)
    cohort = load_cohort(files, labels, task)
    splits = make_splits(cohort.patient_ids, cohort.strata, [0])
    split = splits.set_index("patient_id").loc[cohort.patient_ids.astype(str), "split"].to_numpy()
    return cohort, split


@pytest.fixture(scope="module", params=["classification", "survival"])
def tiny_cohort(request, tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp(request.param), request.param)


@pytest.mark.parametrize("name", NAMES)
def test_trains_through_the_shared_loop_and_round_trips(name, tiny_cohort):
    cohort, split = tiny_cohort
    settings = TrainSettings(epochs=2, warmup_epochs=1, batch_size=16, patience=5, device="cpu")
    model_config = {**TINY, "method": name, "method_options": {}}
    ckpt = train_model(cohort, split, model_config, settings, seed=0)
    assert ckpt["method"] == name and ckpt["method_options"] == {}
    assert ckpt["best_epoch"] >= 0 and not ckpt["fused"]  # no warm-up: selection from epoch 0
    assert all(np.isfinite(h["loss"]) for h in ckpt["history"])
    out = predict(ckpt, cohort, device="cpu")
    key = "prob" if cohort.task == "classification" else "risk"
    assert set(out) == {key} and np.isfinite(out[key]).all()
    model = load_model(ckpt, torch.device("cpu"))
    assert type(model) is METHODS[name]
    again = run_model(
        model,
        model_inputs(cohort, ckpt["scalers"]),
        torch.from_numpy(cohort.present),
        False,
        torch.device("cpu"),
        None,
    )
    assert set(again) == {"logits"}
    if cohort.task == "classification":
        np.testing.assert_allclose(torch.softmax(torch.from_numpy(again["logits"]), -1), out[key])


def test_method_options_reach_the_model_and_the_checkpoint(tmp_path):
    cohort, split = _cohort(tmp_path, "classification")
    settings = TrainSettings(epochs=1, batch_size=16, device="cpu")
    model_config = {**TINY, "method": "single", "method_options": {"modality": "b"}}
    ckpt = train_model(cohort, split, model_config, settings, seed=0)
    assert ckpt["method_options"] == {"modality": "b"}
    model = load_model(ckpt, torch.device("cpu"))
    assert model.encoders.names == ["b"]


def test_a_batch_without_any_modality_stays_finite():
    config = AMCConfig(modalities={"a": 4, "b": 3}, **TINY)
    x = {"a": torch.randn(3, 4), "b": torch.randn(3, 3)}
    nothing = torch.zeros(3, 2, dtype=torch.bool)
    for name in NAMES:
        out = build_model(name, config).train()(x, nothing)
        for value in (out.logits, *out.aux_losses.values()):
            assert torch.isfinite(value).all(), name


def test_random_views_are_seeded_and_resume_exactly(tmp_path, monkeypatch):
    """MUSE draws random edge drops: same seed, same model; an interrupted run resumes exactly."""
    import amc.training.loop as loop

    cohort, split = _cohort(tmp_path, "classification")
    settings = TrainSettings(epochs=3, batch_size=16, patience=5, device="cpu")
    model_config = {**TINY, "method": "muse"}
    first = train_model(cohort, split, model_config, settings, seed=3)
    second = train_model(cohort, split, model_config, settings, seed=3)
    assert [h["loss"] for h in first["history"]] == [h["loss"] for h in second["history"]]
    assert all(h["muse_contrastive"] > 0 for h in first["history"])

    real, calls = loop.validation_score, {"n": 0}

    def crash_on_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    resume = tmp_path / "muse.resume.pt"
    monkeypatch.setattr(loop, "validation_score", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(cohort, split, model_config, settings, 3, resume_path=resume, resume_every_s=0)
    monkeypatch.setattr(loop, "validation_score", real)
    resumed = train_model(cohort, split, model_config, settings, seed=3, resume_path=resume)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in first["history"]]
