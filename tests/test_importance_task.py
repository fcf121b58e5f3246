"""Issue 18: the task-metric side of the importance study (late / early / oracle references)."""

import numpy as np
import pandas as pd
import pytest
import torch

from amc.baselines import build_model
from amc.data.cohort import Cohort
from amc.model import AMCConfig
from amc.studies import importance as study
from amc.studies import importance_task as task
from tests.helpers import benchmark_module


def _cohort(n: int = 6) -> Cohort:
    rng = np.random.default_rng(0)
    return Cohort(
        patient_ids=np.array([f"P{i}" for i in range(n)], dtype=object),
        modalities=["m0", "m1"],
        features={
            "m0": rng.normal(size=(n, 4)).astype(np.float32),
            "m1": rng.normal(size=(n, 3)).astype(np.float32),
        },
        present=np.ones((n, 2), dtype=bool),
        task="classification",
        labels=np.arange(n) % 2,
        class_names=["0", "1"],
    )


def test_drop_modality_marks_only_the_given_patients_absent():
    cohort = _cohort()
    rows = np.array([True, False, True, False, False, False])
    dropped = task.drop_modality(cohort, rows, 0)
    np.testing.assert_array_equal(dropped.present[:, 0], ~rows)
    assert dropped.present[:, 1].all()
    assert np.all(dropped.features["m0"][rows] == 0)
    np.testing.assert_array_equal(dropped.features["m0"][~rows], cohort.features["m0"][~rows])
    np.testing.assert_array_equal(dropped.features["m1"], cohort.features["m1"])
    assert cohort.present.all() and not np.all(cohort.features["m0"][rows] == 0)  # a copy


def test_late_fusion_ignores_a_modality_marked_absent():
    # What makes the oracle an oracle: with m0 absent, m0's features cannot move the prediction.
    torch.manual_seed(0)
    config = AMCConfig(modalities={"m0": 4, "m1": 3, "m2": 5}, hidden=8, heads=2, tokens=2)
    model = build_model("late", config).eval()
    inputs = {name: torch.randn(4, size) for name, size in config.modalities.items()}
    present = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1]]).bool()
    noisy = {**inputs, "m0": inputs["m0"] + 10 * torch.randn(4, 4)}
    with torch.no_grad():
        before, after = model(inputs, present).logits, model(noisy, present).logits
    assert torch.allclose(before[~present[:, 0]], after[~present[:, 0]], atol=1e-6)
    assert not torch.allclose(before[present[:, 0]], after[present[:, 0]], atol=1e-3)


def _planted(seed: int = 0, n: int = 240) -> tuple[Cohort, np.ndarray, np.ndarray]:
    """m0 strongly predictive but pure loud noise for half the patients; m1, m2 weak."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    sign = 2.0 * labels[:, None] - 1.0
    corrupted = rng.permutation(n) < n // 2
    m0 = 2.0 * sign * np.ones((n, 8)) + rng.normal(size=(n, 8))
    m0[corrupted] = 4.0 * rng.normal(size=(corrupted.sum(), 8))
    features = {"m0": m0}
    for name in ("m1", "m2"):
        features[name] = 0.6 * sign * np.ones((n, 6)) + rng.normal(size=(n, 6))
    cohort = Cohort(
        patient_ids=np.array([f"P{i:03d}" for i in range(n)], dtype=object),
        modalities=["m0", "m1", "m2"],
        features={k: v.astype(np.float32) for k, v in features.items()},
        present=np.ones((n, 3), dtype=bool),
        task="classification",
        labels=labels,
        class_names=["0", "1"],
    )
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    return cohort, corrupted, split


def test_oracle_beats_late_fusion_on_a_planted_cohort():
    cohort, corrupted, split = _planted()
    cfg = study.StudyConfig(epochs=3, warmup_epochs=1)
    late = task.fit_and_score(cohort, split, "late", corrupted, cfg, seed=0)
    oracle = task.fit_and_score(cohort, split, "oracle", corrupted, cfg, seed=0)
    assert oracle["task_f1"] > late["task_f1"] + 0.03, (oracle, late)
    with pytest.raises(ValueError, match="late, early, oracle|'late', 'early', 'oracle'"):
        task.fit_and_score(cohort, split, "mult", corrupted, cfg, seed=0)


def _table(amc: list[tuple[str, float, float]], late, oracle) -> pd.DataFrame:
    rows = [("amc", name, mean, std) for name, mean, std in amc]
    rows += [("late", "late fusion", *late), ("oracle", "oracle", *oracle)]
    return pd.DataFrame(
        [
            {
                "corruption": "noise",
                "level": 0.5,
                "family": f,
                "method": m,
                "f1_mean": mean,
                "f1_std": std,
            }
            for f, m, mean, std in rows
        ]
    )


def test_goal_check_takes_the_best_amc_and_both_conditions():
    # best AMC 0.90 +- 0.01; late 0.85 +- 0.02; oracle 0.93: margin 0.05 > 0.02, half-way 0.89
    goal = task.goal_check(_table([("a", 0.80, 0.0), ("b", 0.90, 0.01)], (0.85, 0.02), (0.93, 0)))
    g = goal["noise0.5"]
    assert g["best_amc"] == "b" and g["margin_over_late"] == pytest.approx(0.05)
    assert g["beats_late_beyond_std"] and g["half_way_to_oracle"]
    # within the std of late fusion: does not beat it; 0.87 < half-way 0.89
    g = task.goal_check(_table([("a", 0.87, 0.01)], (0.85, 0.03), (0.93, 0)))["noise0.5"]
    assert not g["beats_late_beyond_std"] and not g["half_way_to_oracle"]
    # no oracle row: no verdict
    assert task.goal_check(_table([("a", 0.9, 0.0)], (0.8, 0), (0.9, 0)).iloc[:2]) == {}
    assert g["beats_late_beyond_paired_std"] is None  # no per-seed rows: no paired reading


def _seed_rows(amc: list[float], late: list[float]) -> pd.DataFrame:
    rows = [("amc", "AMC x", f1) for f1 in amc] + [("late", "late fusion", f1) for f1 in late]
    seeds = list(range(len(amc))) + list(range(len(late)))
    return pd.DataFrame(
        [
            {"seed": s, "corruption": "noise", "level": 0.5, "family": f, "method": m}
            | {"task_f1": f1, "task_auroc": f1}
            for s, (f, m, f1) in zip(seeds, rows)
        ]
    )


def test_goal_check_reports_the_paired_and_the_marginal_reading():
    # Seeds move both methods together: AMC is 0.02 above late fusion on every seed. The
    # marginal stds (0.05) hide it; the paired differences (std 0) do not.
    late = [0.70, 0.80, 0.75, 0.82, 0.68]
    amc = [f + 0.02 for f in late]
    rows = pd.concat([_seed_rows(amc, late), _seed_rows([0.9] * 5, [0.9] * 5).iloc[:0]])
    oracle = pd.DataFrame(
        [{"seed": s, "corruption": "noise", "level": 0.5, "family": "oracle"} for s in range(5)]
    ).assign(method="oracle", task_f1=0.8, task_auroc=0.8)
    rows = pd.concat([rows, oracle], ignore_index=True)
    g = task.goal_check(task.task_table(rows), rows)["noise0.5"]
    assert not g["beats_late_beyond_std"] and g["beats_late_beyond_paired_std"]
    assert g["paired_diff_mean"] == pytest.approx(0.02) and g["paired_diff_std"] < 1e-9
    assert g["paired_wins"] == "5/5"
    # the oracle (0.8 on every seed) against late fusion: +0.05 ± 0.054, not beyond
    assert g["oracle_paired_diff_mean"] == pytest.approx(0.8 - np.mean(late))
    assert g["oracle_paired_diff_std"] == pytest.approx(np.std(late))
    assert g["oracle_beats_late_beyond_paired_std"] is False
    # A difference that flips sign from seed to seed is beyond neither reading.
    amc = [f + d for f, d in zip(late, [0.05, -0.04, 0.05, -0.04, 0.0])]
    rows = pd.concat([_seed_rows(amc, late), oracle], ignore_index=True)
    g = task.goal_check(task.task_table(rows), rows)["noise0.5"]
    assert not g["beats_late_beyond_paired_std"] and not g["beats_late_beyond_std"]
    md = task.task_markdown(task.task_table(rows), {"noise0.5": g}, "differential")
    assert "beats late > marginal std | beats late > paired std" in md
    assert f"| {g['paired_diff_mean']:+.3f} ± {g['paired_diff_std']:.3f} | 2/5 |" in md
    assert md.rstrip().endswith(f"| {g['oracle_paired_diff_mean']:+.3f} ± {np.std(late):.3f} |")


def test_grids_and_baseline_jobs():
    assert len(task.FULL_GRID) == 12 and len(set(task.FULL_GRID)) == 12
    assert set(task.DEFAULT_GRID) <= set(task.FULL_GRID)
    assert set(task.DEFAULT_GRID) < set(task.CANDIDATE_GRID) <= set(task.FULL_GRID)
    assert set(task.GRIDS) == {"default", "candidate", "full"}
    cfg = study.StudyConfig(
        corruptions=("noise", "zero"), levels=(0.3, 0.5), task_corruptions=("zero", "shift")
    )
    jobs = task.make_baseline_jobs((0, 1), cfg)
    assert len(jobs) == 2 * 1 * 2 * 3 and {j.corruption for j in jobs} == {"zero"}
    amc_jobs = study.make_jobs(
        (0,),
        study.StudyConfig(amc_variants=task.FULL_GRID, task_corruptions=None, task_levels=None),
    )
    assert len(amc_jobs) == len(set(amc_jobs))  # the paper's models are not trained twice
    # validity side 2 attentions x 9 settings + 2 x 3 alignment-driven; task side: 12 variants
    # x 9 settings, of which 9 + 3 already exist
    assert len(amc_jobs) == 18 + 6 + 12 * 9 - 12
    # Default task side: the goal's settings (noise 30 / 50 %) only: 12 x 2 - 2 - 1 new models.
    amc_jobs = study.make_jobs((0,), study.StudyConfig(amc_variants=task.FULL_GRID))
    assert len(amc_jobs) == 18 + 6 + 12 * 2 - 3
    with pytest.raises(ValueError, match="unknown baselines"):
        task.make_baseline_jobs((0,), study.StudyConfig(baselines=("late", "mult")))


def test_task_rows_label_amc_models_and_keep_the_task_side_settings():
    base = {"seed": 0, "level": 0.5, "task_f1": 0.8, "task_auroc": 0.9}
    runs = pd.DataFrame(
        [
            {
                **base,
                "attention": "differential",
                "corruption": "noise",
                "estimator": "mean",
                "trained_with": "mean",
                "replace_rule": "complement",
                "pooling": "concat",
            },
            {
                **base,
                "attention": "differential",
                "corruption": "noise",
                "estimator": "std",
                "trained_with": "mean",
                "replace_rule": "complement",
                "pooling": "concat",
            },
            {
                **base,
                "attention": "vanilla",
                "corruption": "noise",
                "estimator": "mean",
                "trained_with": "mean",
                "replace_rule": "complement",
                "pooling": "concat",
            },
            {
                **base,
                "attention": "differential",
                "corruption": "zero",
                "estimator": "mean",
                "trained_with": "mean",
                "replace_rule": "complement",
                "pooling": "concat",
            },
        ]
    )
    late = pd.DataFrame([{**base, "corruption": "noise", "method": "late"}])
    rows = task.task_rows(runs, late, "differential", corruptions=("noise",))
    assert list(rows["method"]) == ["AMC mean · complement · concat", "late fusion"]
    assert list(rows["family"]) == ["amc", "late"]
    assert len(task.task_rows(runs, late, "differential")) == 3  # zero kept without a filter
    # Levels outside the task side (the validity side's 10 %) stay out of the task table.
    low = runs.assign(level=0.1)
    assert len(task.task_rows(low, late, "differential", levels=(0.3, 0.5))) == 1  # late only
    assert len(task.task_rows(low, late, "differential", levels=(0.1,))) == 3


def test_baselines_default_to_the_goal_settings_and_train_the_oracle_once_per_level():
    jobs = task.make_baseline_jobs((0,), study.StudyConfig())
    assert {(j.corruption, j.level) for j in jobs} == {("noise", 0.3), ("noise", 0.5)}
    assert len(jobs) == 2 * 3
    every = study.StudyConfig(task_corruptions=None, task_levels=None)
    jobs = task.make_baseline_jobs((0, 1), every)
    oracle = [j for j in jobs if j.method == "oracle"]
    # 2 seeds x 3 levels: the oracle's cohort does not depend on the corruption kind
    assert len(oracle) == 2 * 3 and {j.corruption for j in oracle} == {"noise"}
    assert len(jobs) == 2 * 3 * 3 * 2 + len(oracle)
    rows = pd.DataFrame(
        [
            {
                "seed": j.seed,
                "corruption": j.corruption,
                "level": j.level,
                "method": j.method,
                "task_f1": 0.5 + j.level,
            }
            for j in jobs
        ]
    )
    shared = task.share_oracle(rows, study.task_corruptions(every))
    got = shared[shared["method"] == "oracle"]
    assert len(got) == 2 * 3 * 3 and set(got["corruption"]) == {"noise", "shift", "zero"}
    np.testing.assert_allclose(got["task_f1"], 0.5 + got["level"])
    assert len(shared[shared["method"] != "oracle"]) == len(rows) - len(oracle)


def test_oracle_cohort_is_the_same_for_every_corruption_kind():
    # Why the oracle is trained once per level: after dropping m0 for the corrupted patients,
    # the cohorts of noise / shift / zero are identical.
    cfg = study.StudyConfig(n_patients=80)
    clean = study.make_clean(3, cfg)
    dropped = []
    for kind in study.CORRUPTIONS:
        cohort, corrupted, _ = study.corrupt(clean, kind, 0.3, cfg)
        dropped.append(task.drop_modality(cohort, corrupted, 0))
    for other in dropped[1:]:
        np.testing.assert_array_equal(other.present, dropped[0].present)
        for name in dropped[0].modalities:
            np.testing.assert_array_equal(other.features[name], dropped[0].features[name])


def test_config_from_params_sets_cohort_size_and_task_side():
    cfg = study.config_from_params({"quick": False, "n_patients": 1500, "task_side": "goal"})
    assert cfg.n_patients == 1500 and study.task_levels(cfg) == (0.3, 0.5)
    assert study.task_corruptions(cfg) == ("noise",)
    cfg = study.config_from_params({"quick": False, "n_patients": 600, "task_side": "all"})
    assert (
        study.task_levels(cfg) == study.LEVELS and study.task_corruptions(cfg) == study.CORRUPTIONS
    )
    assert (cfg.label_noise, cfg.private_latent) == (0.5, 0)  # the study's own cohort
    cfg = study.config_from_params({"n_patients": 2000, "label_noise": 0.2, "private_latent": 6})
    assert (cfg.n_patients, cfg.label_noise, cfg.private_latent) == (2000, 0.2, 6)
    assert study.config_from_params({"quick": True, "n_patients": 1500}) == study.QUICK
    # QUICK runs the 50 % level only: the task side keeps the goal level it has
    assert study.task_levels(study.QUICK) == (0.5,)


def test_private_latent_is_seen_by_the_corrupted_modality_only():
    base = study.StudyConfig(n_patients=300)
    clean = study.make_clean(2, base)
    private = study.make_clean(2, study.StudyConfig(n_patients=300, private_latent=3))
    # Same random stream: labels, noise and m0 unchanged; m1 / m2 lose the private dims.
    np.testing.assert_array_equal(private["labels"], clean["labels"])
    np.testing.assert_array_equal(private["signal"][0], clean["signal"][0])
    np.testing.assert_array_equal(private["noise"][1], clean["noise"][1])
    assert not np.allclose(private["signal"][1], clean["signal"][1])
    # m1's signal is a linear map of the shared dims only: the private dims explain nothing
    z = np.random.default_rng([2, 6]).normal(size=(300, base.latent))
    shared, hidden = z[:, : base.latent - 3], z[:, base.latent - 3 :]
    coef, *_ = np.linalg.lstsq(shared, private["signal"][1], rcond=None)
    np.testing.assert_allclose(shared @ coef, private["signal"][1], atol=1e-8)
    coef, *_ = np.linalg.lstsq(hidden, private["signal"][0], rcond=None)
    assert np.abs(hidden @ coef).max() > 0.1  # m0 does see them
    with pytest.raises(ValueError, match="private_latent"):
        study.make_clean(0, study.StudyConfig(private_latent=8))


def test_variants_accept_every_switch_value_including_modality_heads():
    assert all(task.is_variant(v) for v in task.FULL_GRID)
    assert task.is_variant(("alignment", "deficit", "importance_logits"))
    assert not task.is_variant(("alignment", "deficit", "logits"))
    assert not task.is_variant(("alignment", "deficit"))
    assert not task.is_variant(("entropy", "complement", "concat"))


def test_baseline_headroom_trains_late_and_oracle_only_and_pairs_them_by_seed():
    cfg = study.StudyConfig(
        n_patients=120, levels=(0.5,), epochs=1, warmup_epochs=0, baselines=("late", "oracle")
    )
    rows, room = task.baseline_headroom((0, 1), cfg, workers=1)
    assert sorted(rows["method"].unique()) == ["late", "oracle"] and len(rows) == 2 * 2
    assert len(room) == 1 and room.iloc[0]["level"] == 0.5
    f1 = rows.pivot(index="seed", columns="method", values="task_f1")
    diff = (f1["oracle"] - f1["late"]).to_numpy()
    assert room.iloc[0]["room_mean"] == pytest.approx(diff.mean())
    assert room.iloc[0]["room_std"] == pytest.approx(diff.std())
    assert room.iloc[0]["late_f1"] == pytest.approx(f1["late"].mean())
    with pytest.raises(ValueError, match="late and oracle"):
        task.baseline_headroom((0,), study.StudyConfig(baselines=("late", "early")))


def test_benchmark_baselines_only_prints_the_room_and_writes_per_seed_rows(tmp_path, capsys):
    args = ["--baselines-only", "--n-patients", "120", "--label-noise", "0.2"]
    args += ["--levels", "0.5", "--epochs", "1", "--seeds", "0", "--workers", "1"]
    with benchmark_module("importance_validity") as bench:
        bench.main([*args, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "label_noise=0.2" in printed and "| noise 50% |" in printed
    rows = pd.read_csv(tmp_path / "headroom.csv")
    assert sorted(rows["method"]) == ["late", "oracle"]  # no early fusion, no AMC
