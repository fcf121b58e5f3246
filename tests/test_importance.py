"""Issue 6: alignment importance, importance validity metrics, table, figure, study plumbing."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from amc.errors import InputError
from amc.evaluation.importance import (
    corruption_auroc,
    importance_estimates,
    importance_validity_table,
    quality_spearman,
)
from amc.evaluation.importance_figures import plot_importance_by_corruption
from amc.model import AMC, AMCConfig
from amc.model.fusion import alignment_importance
from amc.studies import importance as study


def _tokens(embeddings: list[list[float]], n: int = 4) -> torch.Tensor:
    """(1, M, n, D) tokens whose mean over n is the given embedding per modality."""
    e = torch.tensor(embeddings, dtype=torch.float32)  # (M, D)
    jitter = torch.randn(1, e.shape[0], n, e.shape[1], generator=torch.Generator().manual_seed(0))
    jitter = jitter - jitter.mean(dim=2, keepdim=True)  # keeps the mean exactly
    return e.view(1, e.shape[0], 1, -1) + 0.1 * jitter


# ------------------------------------------------------------------ alignment_importance
def test_opposite_modality_gets_lowest_importance_exact_values():
    x = _tokens([[1, 0, 0], [1, 0.1, 0], [1, 0, 0.1], [-1, 0, 0]])
    s = alignment_importance(x)
    c = 1 / math.sqrt(1.01)  # cos(e0, e1) = cos(e0, e2); cos(e1, e2) = 1 / 1.01
    # mean cosine to the others; modality 3 disagrees with everyone (< 0 -> floored)
    a = torch.tensor([(2 * c - 1) / 3, (1 / 1.01) / 3, (1 / 1.01) / 3, 0.0]).clamp_min(1e-6)
    assert torch.allclose(s[0], a / a.sum(), atol=1e-5)
    assert s[0].argmin() == 3 and s[0, 3] < 1e-5
    assert torch.allclose(s.sum(-1), torch.ones(1), atol=1e-6)


def test_when_nothing_agrees_importance_is_uniform():
    # e2 opposite to e0, e1 orthogonal-ish: every mean cosine <= 0 -> all floored -> 1/3 each
    s = alignment_importance(_tokens([[1, 0, 0], [0, 1, 0], [-1, 0, 0]]))
    assert torch.allclose(s, torch.full((1, 3), 1 / 3), atol=1e-6)


def test_orthogonal_modality_is_lowest_and_rows_sum_to_one():
    x = _tokens([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    s = alignment_importance(x)
    assert s[0].argmin() == 2
    assert s[0, 2] < 0.1 * s[0, 0]
    assert torch.allclose(s.sum(-1), torch.ones(1), atol=1e-6)


def test_absent_is_zero_sole_present_is_one_none_present_is_zero():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 5, 8, generator=gen)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    s = alignment_importance(x, present)
    assert torch.all(s[~present] == 0)
    assert torch.allclose(s[:3].sum(-1), torch.ones(3), atol=1e-6)
    assert s[2, 1] == pytest.approx(1.0)
    assert torch.all(s[3] == 0)
    # Two present modalities: agreement is symmetric, so they share the importance equally.
    assert torch.allclose(s[1, [0, 2]], torch.tensor([0.5, 0.5]), atol=1e-6)


def test_alignment_carries_no_gradient():
    x = torch.randn(2, 3, 4, 8, requires_grad=True)
    s = alignment_importance(x)
    assert not s.requires_grad


def test_network_alignment_importance_drives_fusion_and_output():
    torch.manual_seed(0)
    config = AMCConfig(
        modalities={"a": 12, "b": 10, "c": 6},
        hidden=16,
        heads=2,
        layers=2,
        tokens=4,
        experts=2,
        top_k=1,
        importance="alignment",
    )
    model = AMC(config).eval()
    inputs = {name: torch.randn(5, size) for name, size in config.modalities.items()}
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]]).bool()
    with torch.no_grad():
        out = model(inputs, present)
        expected = alignment_importance(model.encode(inputs) * present[:, :, None, None], present)
    assert torch.allclose(out.modality_importance, expected, atol=1e-6)
    assert torch.all(out.modality_importance[~present] == 0)
    assert torch.allclose(out.modality_importance.sum(-1), torch.ones(5), atol=1e-5)
    # Training still backpropagates through the fused tokens.
    model.train()
    out = model(inputs, present)
    loss = out.logits.sum() + out.aux_losses["instance"]
    loss.backward()
    assert model.encoders["a"].proj.weight.grad is not None


# ---------------------------------------------------------------------------- metrics
def test_corruption_auroc_and_quality_spearman():
    imp = np.array([0.1, 0.2, 0.5, 0.6, 0.4])
    corrupted = np.array([True, True, False, False, False])
    assert corruption_auroc(imp, corrupted) == pytest.approx(1.0)
    assert corruption_auroc(-imp, corrupted) == pytest.approx(0.0)
    assert math.isnan(corruption_auroc(imp, np.zeros(5, dtype=bool)))
    quality = np.array([0.0, 0.1, 0.8, 0.3, 0.9])
    assert quality_spearman(imp, quality) == pytest.approx(0.6)
    assert math.isnan(quality_spearman(imp, np.ones(5)))
    with pytest.raises(InputError, match="one importance value"):
        corruption_auroc(imp, corrupted[:3])
    with pytest.raises(InputError, match="NaN"):
        quality_spearman(np.array([np.nan, 1, 2, 3, 4]), quality)


def test_validity_table_mean_std_over_seeds():
    rows = []
    for seed, (auc, rho) in enumerate([(0.6, 0.1), (0.8, 0.3)]):
        for est, shift in (("mean", 0.0), ("alignment", 0.1)):
            rows.append(
                {
                    "seed": seed,
                    "estimator": est,
                    "attention": "differential",
                    "corruption": "noise",
                    "level": 0.5,
                    "corruption_auroc": auc + shift,
                    "quality_spearman": rho,
                    "task_auroc": 0.7,
                }
            )
    md, long = importance_validity_table(rows)
    mean_row = long[long["estimator"] == "mean"].iloc[0]
    assert mean_row["corruption_auroc_mean"] == pytest.approx(0.7)
    assert mean_row["corruption_auroc_std"] == pytest.approx(0.1)
    assert mean_row["n_seeds"] == 2 and mean_row["task_auroc_std"] == pytest.approx(0.0)
    assert "| noise | 0.5 | differential | 0.700 ± 0.100 | 0.800 ± 0.100 |" in md
    assert "| noise | 0.5 | differential | 0.200 ± 0.100 | 0.200 ± 0.100 |" in md
    with pytest.raises(InputError, match="quality_spearman"):
        importance_validity_table([{k: v for k, v in rows[0].items() if k != "quality_spearman"}])


def test_figure_is_written_and_checks_columns(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "estimator": np.repeat(["mean", "alignment"], 20),
            "corrupted": np.tile([True, False], 20),
            "importance_x": rng.random(40),
            "importance_y": rng.random(40),
        }
    )
    out = plot_importance_by_corruption(frame, tmp_path / "f.png", ["x", "y"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="importance_z"):
        plot_importance_by_corruption(frame, tmp_path / "g.png", ["z"])
    with pytest.raises(InputError, match="std"):
        plot_importance_by_corruption(frame, tmp_path / "g.png", ["x"], estimators=("std",))
    assert not (tmp_path / "g.png").exists()


# ---------------------------------------------------------------------- the study
def test_corruptions_set_ground_truth_and_are_seeded():
    cfg = study.StudyConfig(n_patients=100)
    clean = study.make_clean(0, cfg)
    noise, corrupted, q_noise = study.corrupt(clean, "noise", 0.3, cfg)
    assert corrupted.sum() == 30
    _, corrupted_10, _ = study.corrupt(clean, "noise", 0.1, cfg)
    assert np.all(corrupted[corrupted_10])  # nested levels
    assert np.all(q_noise[corrupted, 0] == 0) and np.all(q_noise[~corrupted, 0] > 0.1)
    assert np.all(q_noise[:, 1] > 0.1)  # other modalities untouched
    shift, _, q_shift = study.corrupt(clean, "shift", 0.3, cfg)
    assert q_shift[corrupted, 0].mean() < 0.25 * q_shift[~corrupted, 0].mean()
    zero, _, q_zero = study.corrupt(clean, "zero", 0.3, cfg)
    assert np.all(zero.features["m0"][corrupted] == 0) and np.all(q_zero[corrupted, 0] == 0)
    clean_rows = ~corrupted
    for cohort in (noise, shift, zero):
        np.testing.assert_array_equal(
            cohort.features["m0"][clean_rows], noise.features["m0"][clean_rows]
        )
    again, _, _ = study.corrupt(study.make_clean(0, cfg), "noise", 0.3, cfg)
    np.testing.assert_array_equal(again.features["m0"], noise.features["m0"])


def test_tiny_study_writes_every_output(tmp_path):
    cfg = study.StudyConfig(
        n_patients=120,
        corruptions=("noise",),
        levels=(0.5,),
        attentions=("differential",),
        epochs=2,
        warmup_epochs=1,
        amc_variants=(("mean", "complement", "concat"), ("alignment", "deficit", "importance")),
    )
    runs = study.run_study(tmp_path, seeds=(0,), config=cfg, workers=1)
    assert set(runs["estimator"]) == {"mean", "std", "max", "alignment"}
    assert set(runs["trained_with"]) == {"mean", "alignment"}
    assert runs["corruption_auroc"].between(0, 1).all()
    for name in ("validity.md", "validity.csv", "runs.csv", "task.csv", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "figure.png").stat().st_size > 0
    md = (tmp_path / "validity.md").read_text()
    assert "alignment (drives fusion)" in md and "fusion.importance=alignment" in md
    # The validity side keeps to the default rule / pooling: the extra variant is task-side only.
    validity = pd.read_csv(tmp_path / "validity.csv")
    assert set(validity["estimator"]) == {
        "mean",
        "std",
        "max",
        "alignment",
        "alignment (drives fusion)",
    }
    # Task side: every AMC variant and the three references, on the same setting.
    rows = pd.read_csv(tmp_path / "task.csv")
    assert set(rows["method"]) == {
        "AMC mean · complement · concat",
        "AMC alignment · complement · concat",
        "AMC alignment · deficit · importance",
        "late fusion",
        "early fusion",
        "oracle late fusion (drops corrupted m0)",
    }
    assert rows["task_f1"].between(0, 1).all() and len(rows) == 6
    table = md[md.index("### Task metric: AMC variants") :]
    for label in ("AMC alignment · deficit · importance", "late fusion", "early fusion", "oracle"):
        assert f"| {label}" in table
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    goal = metrics["task_side"]["goal"]["noise0.5"]
    assert goal["best_amc"].startswith("AMC ") and 0 <= goal["late_f1"] <= 1


def test_importance_estimates_match_the_models_own(tmp_path):
    cfg = study.StudyConfig(n_patients=120, epochs=2, warmup_epochs=1)
    clean = study.make_clean(1, cfg)
    cohort, _, _ = study.corrupt(clean, "noise", 0.3, cfg)
    split = np.where(np.arange(120) < 80, "train", np.where(np.arange(120) < 100, "val", "test"))
    from amc.inference import predict
    from amc.training.loop import train_model

    ckpt = train_model(
        cohort, split, {**study.MODEL, "importance": "std"}, study._settings(cfg), seed=1
    )
    est = importance_estimates(ckpt, cohort)
    ref = predict(ckpt, cohort, device="cpu", precision="fp32")
    np.testing.assert_allclose(est["std"], ref["importance"], atol=1e-5)
    np.testing.assert_allclose(est["model"], ref["importance"], atol=1e-5)
    np.testing.assert_allclose(est["prob"], ref["prob"], atol=1e-5)
    for key in ("mean", "max", "alignment"):
        assert est[key].shape == (120, 3)
        np.testing.assert_allclose(est[key].sum(-1), 1.0, atol=1e-5)


def test_stage_calls_the_study(monkeypatch):
    import stages.importance as stage

    calls = {}

    def fake(out_dir, seeds, config, grid):
        calls.update(out_dir=out_dir, seeds=seeds, config=config, grid=grid)
        return pd.DataFrame()

    monkeypatch.setattr(stage, "run_study", fake)
    stage.main(["--quick"])
    assert calls == {
        "out_dir": stage.OUT_DIR,
        "seeds": (0,),
        "config": study.QUICK,
        "grid": "default",
    }


def test_params_accept_alignment_and_still_reject_unknown(tmp_path):
    import yaml

    from stages.params import load_params

    tree = load_params("params.yaml")
    tree["fusion"]["importance"] = "alignment"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    assert load_params(path)["fusion"]["importance"] == "alignment"
    tree["fusion"]["importance"] = "alignmnet"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(InputError, match=re.escape("mean | std | max | alignment")):
        load_params(path)
