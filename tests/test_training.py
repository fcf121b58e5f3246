"""Training loop: learns, selects on validation only, resumes after an interruption exactly."""

import numpy as np
import pytest
import torch

import amc.training.loop as loop
from amc.data.cohort import load_cohort
from amc.data.splits import make_splits
from amc.evaluation.metrics import classification_metrics, concordance_index
from amc.training import resume
from amc.training.loop import TrainSettings, predict, train_model
from tests.helpers import toy_dataset

MODEL = dict(
    hidden=16, heads=2, layers=2, tokens=4, experts=4, top_k=2, encoder_layers=1, dropout=0.1
)


def _setup(tmp_path, task="classification", missing=0.2, n=200):
    files, labels = toy_dataset(tmp_path, n=n, task=task, missing=missing, signal=3.0)
    cohort = load_cohort(files, labels, task)
    splits = make_splits(cohort.patient_ids, cohort.strata, [0])
    split = splits.set_index("patient_id").loc[cohort.patient_ids.astype(str), "split"].to_numpy()
    return cohort, split


def test_classification_learns_and_reports_importance(tmp_path):
    cohort, split = _setup(tmp_path)
    settings = TrainSettings(epochs=12, warmup_epochs=2, batch_size=32, patience=20, lr=3e-3)
    ckpt = train_model(cohort, split, MODEL, settings, seed=0)
    assert ckpt["fused"] and ckpt["best_epoch"] >= 2  # selected among fusing epochs
    out = predict(ckpt, cohort, device="cpu")
    test = split == "test"
    auroc = classification_metrics(cohort.labels[test], out["prob"][test])["auroc"]
    assert auroc > 0.8
    assert np.allclose(out["importance"].sum(1), 1, atol=1e-4)
    absent = ~cohort.present
    assert np.all(out["importance"][absent] == 0)
    assert np.all(out["replaced"][absent] == MODEL["tokens"])  # absent modality fully imputed
    # the exported counts are exactly the K of the exported importance (one fusion step)
    from amc.model.fusion import replacement_counts

    k = replacement_counts(
        torch.from_numpy(out["importance"]), torch.from_numpy(cohort.present), 4, "complement"
    )
    assert np.array_equal(k.numpy(), out["replaced"])
    assert out["agreement"].shape == out["importance"].shape
    assert np.all(out["agreement"][absent] == 0)


def test_survival_trains_with_discrete_time_head(tmp_path):
    cohort, split = _setup(tmp_path, task="survival", missing=0.0)
    settings = TrainSettings(epochs=8, warmup_epochs=1, batch_size=32, patience=20, lr=3e-3)
    ckpt = train_model(cohort, split, MODEL, settings, seed=0)
    assert len(ckpt["cuts"]) == 3
    risk = predict(ckpt, cohort, device="cpu")["risk"]
    test = split == "test"
    assert concordance_index(cohort.time[test], cohort.event[test], risk[test]) > 0.6


def test_same_seed_same_model(tmp_path):
    cohort, split = _setup(tmp_path, n=80)
    settings = TrainSettings(epochs=3, warmup_epochs=1, batch_size=16)
    a = train_model(cohort, split, MODEL, settings, seed=3)
    b = train_model(cohort, split, MODEL, settings, seed=3)
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key])


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, monkeypatch):
    cohort, split = _setup(tmp_path, n=80)
    settings = TrainSettings(epochs=5, warmup_epochs=1, batch_size=16, patience=20)
    reference = train_model(cohort, split, MODEL, settings, seed=1)

    resume = tmp_path / "seed1.resume.pt"
    real = loop.validation_score
    calls = {"n": 0}

    def crash_on_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "validation_score", crash_on_third_epoch)
    with pytest.raises(KeyboardInterrupt):  # state saved after every epoch
        train_model(cohort, split, MODEL, settings, seed=1, resume_path=resume, resume_every_s=0)
    monkeypatch.setattr(loop, "validation_score", real)
    assert resume.exists()
    resumed = train_model(cohort, split, MODEL, settings, seed=1, resume_path=resume)
    assert len(resumed["history"]) == 5
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in reference["history"]]
    assert resumed["best_epoch"] == reference["best_epoch"]


def test_finished_state_is_reused_but_never_for_other_data(tmp_path, monkeypatch):
    cohort, split = _setup(tmp_path, n=80)
    settings = TrainSettings(epochs=3, warmup_epochs=1, batch_size=16, patience=20)
    resume = tmp_path / "seed2.resume.pt"
    first = train_model(cohort, split, MODEL, settings, seed=2, resume_path=resume)

    calls = {"n": 0}
    real = loop.validation_score

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "validation_score", counting)
    again = train_model(cohort, split, MODEL, settings, seed=2, resume_path=resume)
    assert calls["n"] == 0  # finished run: nothing retrained
    assert again["best_epoch"] == first["best_epoch"]
    cohort.features["a"][0, 0] += 1.0  # the data changed: the saved state must not be used
    train_model(cohort, split, MODEL, settings, seed=2, resume_path=resume)
    assert calls["n"] == 3


def test_resume_state_is_saved_at_most_every_interval_and_at_the_end(tmp_path, monkeypatch):
    cohort, split = _setup(tmp_path, n=80)
    settings = TrainSettings(epochs=4, warmup_epochs=1, batch_size=16, patience=20)
    saved_epochs: list[int] = []
    real = resume.save_state

    def recording(path, model, optimizer, generator, state, signature):
        saved_epochs.append(state["epoch"])
        real(path, model, optimizer, generator, state, signature)

    monkeypatch.setattr(resume, "save_state", recording)
    train_model(cohort, split, MODEL, settings, 0, resume_path=tmp_path / "a.pt")
    assert saved_epochs == [4]  # the default interval outlasts this training: only the end
    saved_epochs.clear()
    train_model(cohort, split, MODEL, settings, 0, resume_path=tmp_path / "b.pt", resume_every_s=0)
    assert saved_epochs == [1, 2, 3, 4]


def test_modality_heads_loss_is_the_mean_unimodal_loss_over_present_patients():
    from amc.model.losses import classification_loss

    torch.manual_seed(0)
    logits = torch.randn(4, 3, 2)
    present = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]).bool()
    labels = torch.tensor([0, 1, 1, 0, 1])
    idx = torch.tensor([4, 0, 2, 3])  # the batch's patients
    got = loop._modality_heads_loss("classification", logits, present, {"label": labels}, idx)
    m0 = classification_loss(logits[:3, 0], labels[idx[:3]])
    m1 = classification_loss(logits[[0, 2, 3], 1], labels[idx[[0, 2, 3]]])
    assert torch.allclose(got, (m0 + m1) / 2)  # m2 present for nobody: left out


@pytest.mark.parametrize("task", ["classification", "survival"])
def test_weighted_modality_heads_loss_ignores_zero_weight_patients(task):
    from amc.model.losses import classification_loss, survival_nll

    torch.manual_seed(0)
    width = 2 if task == "classification" else 4
    logits = torch.randn(4, 3, width, requires_grad=True)
    present = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]).bool()
    targets = {
        "label": torch.tensor([0, 1, 1, 0, 1]),
        "bin": torch.tensor([0, 3, 1, 2, 2]),
        "event": torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]),
    }
    idx = torch.tensor([4, 0, 2, 3])
    weights = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.25, 0.75, 0.0], [0.0, 1.0, 0.0]])
    got = loop._modality_heads_loss(task, logits, present, targets, idx, weights)

    def one(rows, m):
        if task == "classification":
            return classification_loss(logits[rows, m], targets["label"][idx[rows]], "none")
        j = idx[rows]
        return survival_nll(logits[rows, m], targets["bin"][j], targets["event"][j], "none")

    m0 = (0.5 * one([0], 0) + 0.25 * one([2], 0)).sum() / 0.75  # patient 1: weight 0
    m1 = (0.5 * one([0], 1) + 0.75 * one([2], 1) + one([3], 1)).sum() / 2.25
    assert torch.allclose(got, (m0 + m1) / 2, atol=1e-6)
    got.backward()
    assert torch.equal(logits.grad[1, 0], torch.zeros(width))  # no gradient from weight 0
    assert logits.grad[0, 0].abs().sum() > 0
    # uniform weights over the present patients give the unweighted loss
    uniform = loop._modality_heads_loss(task, logits, present, targets, idx, present.float())
    plain = loop._modality_heads_loss(task, logits, present, targets, idx)
    assert torch.allclose(uniform, plain, atol=1e-6)


def test_modality_heads_weights_importance_changes_training_of_heads_models_only(tmp_path):
    cohort, split = _setup(tmp_path, n=80)
    # Attention importance, not alignment: with the toy cohort's two modalities the alignment
    # importance is 1/2 each by construction, so weighting by it changes nothing but rounding.
    model = {**MODEL, "pooling": "deficit_logits", "importance": "mean"}
    plain = TrainSettings(epochs=2, warmup_epochs=1, batch_size=16)
    weighted = TrainSettings(**{**vars(plain), "modality_heads_weights": "importance"})
    a = train_model(cohort, split, model, plain, seed=1)
    b = train_model(cohort, split, model, weighted, seed=1)
    assert plain.modality_heads_weights == "uniform"  # the default
    assert abs(a["history"][-1]["modality_heads"] - b["history"][-1]["modality_heads"]) > 1e-3
    c = train_model(cohort, split, MODEL, weighted, seed=1)  # no per-modality heads: no effect
    d = train_model(cohort, split, MODEL, plain, seed=1)
    assert c["history"] == d["history"]


def test_modality_heads_weight_adds_the_unimodal_losses_to_training(tmp_path):
    cohort, split = _setup(tmp_path, n=80)
    model = {**MODEL, "pooling": "importance_logits"}
    plain = TrainSettings(epochs=2, warmup_epochs=1, batch_size=16, modality_heads=0.0)
    a = train_model(cohort, split, model, plain, seed=1)
    weighted = TrainSettings(**{**vars(plain), "modality_heads": 1.0})
    b = train_model(cohort, split, model, weighted, seed=1)
    assert "modality_heads" not in a["history"][0]
    assert all(h["modality_heads"] > 0 for h in b["history"])
    assert all(
        hb["loss"] > hb["task"] + hb["modality_heads"] - 1e-6 for hb in b["history"]
    )  # the term is part of the optimised loss
    assert a["history"][0]["loss"] != b["history"][0]["loss"]
    out = predict(b, cohort, device="cpu")
    assert np.allclose(out["prob"].sum(1), 1, atol=1e-5)
    # a model without per-modality heads ignores the weight: same history as without it
    c = train_model(cohort, split, MODEL, weighted, seed=1)
    d = train_model(cohort, split, MODEL, plain, seed=1)
    assert c["history"] == d["history"] and "modality_heads" not in c["history"][0]
