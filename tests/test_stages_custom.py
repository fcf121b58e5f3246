"""The split / train / evaluate / report stages on a `kind: custom` dataset, in a temp folder."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from amc.errors import InputError
from stages import configure, efficiency, evaluate, report, split, train
from tests.helpers import custom_dataset

ROOT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture()
def custom_project(tmp_path, monkeypatch):
    params = yaml.safe_load(open("params.yaml"))
    params["split"]["seeds"] = [0, 1]
    params["model"].update(hidden=16, heads=2, tokens=4, experts=2)
    # workers: 1 -- seeds in worker processes are tested on their own (test_parallel_seeds_...)
    params["train"].update(epochs=3, warmup_epochs=1, batch_size=16, workers=1)
    params["baselines"] = {}  # the baselines' own tests train them; here AMC and one variant
    params["variants"] = {
        "mine-a": {"dataset": "mine", "tables": [11], "label": "A", "modalities": ["a"]},
        "mine-std": {"dataset": "mine", "tables": [4], "fusion": {"importance": "std"}},
    }
    params["datasets"] = {
        "mine": custom_dataset(tmp_path / "mine", n=90, missing=0.2, signal=3.0),
    }
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_custom_dataset_runs_through_all_stages(custom_project):
    split.main(["mine"])
    configure.main(["--out", "data/configs"])  # as dvc.yaml runs them: from the config files
    for method in ("amc", "mine-a", "mine-std"):
        config = ["--config", f"data/configs/mine/{method}.json"]
        train.main(["mine", method, *config])
        evaluate.main(["mine", method, *config])
    efficiency.main([])
    report.main([])
    root = custom_project
    runs = root / "reports/runs/mine"
    assert (root / "models/mine/amc/seed0.pt").exists()
    assert (root / "models/mine/amc/seed1.pt").exists()
    # per-epoch curves: one file per run, every seed and epoch (3 epochs, or fewer if stopped)
    history = pd.read_csv(runs / "amc/plots/curves.tsv", sep="\t")
    assert {"seed", "step", "loss", "task", "val_score"} <= set(history.columns)
    assert set(history["seed"]) == {0, 1} and history["step"].max() <= 2
    assert history[["loss", "val_score"]].notna().all().all()
    metrics = json.loads((root / "reports/metrics/mine/amc.json").read_text())
    assert set(metrics) >= {"accuracy", "recall", "precision", "f1", "auroc"}
    assert len(metrics["f1"]["per_seed"]) == 2
    pred = pd.read_parquet(runs / "amc/predictions.parquet")
    assert len(pred) == 2 * 90 and set(pred["split"]) == {"train", "val", "test"}
    for col in ("label", "prob_0", "prob_1", "importance_a", "importance_b", "replaced_b"):
        assert col in pred.columns
    # the quality signal is exported whichever estimator drives fusion (default: mean)
    assert {"agreement_a", "agreement_b"} <= set(pred.columns)
    assert pred[["agreement_a", "agreement_b"]].notna().all().all()
    # donor counts add up to the replaced tokens of each target modality
    assert (pred["donated_a_to_b"] == pred["replaced_b"]).all()
    assert (pred["donated_b_to_a"] == pred["replaced_a"]).all()
    assert set(pred["label"]) == {"0", "1"}
    # per seed, each patient appears once and test patients never overlap train patients
    for _, rows in pred.groupby("seed"):
        assert rows["patient_id"].is_unique
    single = pd.read_parquet(runs / "mine-a/predictions.parquet")
    assert "present_b" not in single.columns and len(single) == 2 * 90
    tables = (root / "reports/tables.md").read_text()
    assert "mine" in tables and "| AMC |" in tables
    assert "Table 4." in tables and "AMC w/ STD" in tables
    assert "Table 11." in tables and "Paired comparison: mine" in tables
    assert "Table 10. Efficiency (mine)" in tables
    assert (root / "reports/figures/importance_overview.png").stat().st_size > 1000
    assert (root / "reports/figures/mine-roc.png").exists()
    assert (runs / "amc/plots/donors.png").exists() and (
        runs / "amc/plots/token_scores.png"
    ).exists()
    curves = pd.read_csv(root / "reports/curves/mine-val_score.csv")
    assert set(curves.columns) == {"step", "value", "run"} and curves["run"].nunique() == 6


def test_a_survival_dataset_gets_one_kaplan_meier_figure_with_every_method(custom_project):
    """Runs draw no Kaplan-Meier curves (a baseline run imports no matplotlib); the report
    draws each survival dataset's methods side by side, one panel each, from their test rows."""
    root = custom_project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = {"surv": custom_dataset(root / "surv", "survival", n=90, signal=3.0)}
    params["variants"] = {}
    params["baselines"] = {"late": {"family": "late", "label": "Late fusion"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    split.main(["surv"])
    configure.main(["--out", "data/configs"])
    for method in ("amc", "late"):
        config = ["--config", f"data/configs/surv/{method}.json"]
        train.main(["surv", method, *config])
        evaluate.main(["surv", method, *config])
    efficiency.main([])
    report.main([])
    assert not list((root / "reports/runs").rglob("kaplan_meier.png"))
    figure = root / "reports/figures/surv-kaplan_meier.png"
    with figure.open("rb") as png:
        header = png.read(24)
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and width > height  # two panels side by side


def test_efficiency_needs_no_trained_run(custom_project):
    """Table 10 builds each method as its run would, from its settings, features and splits
    only: the stage does not depend on (or wait for) the ~100 runs' outputs."""
    split.main(["mine"])
    configure.main(["--out", "data/configs"])
    efficiency.main([])
    assert not (custom_project / "reports/runs").exists()
    measured = json.loads((custom_project / "reports/efficiency.json").read_text())["mine"]
    assert set(measured) == {"AMC"}  # the variants are AMC with a switch flipped: not measured
    assert measured["AMC"]["params"] > 0 and measured["AMC"]["gflops"] > 0


def test_invalid_param_fails_before_any_work(custom_project):
    params = yaml.safe_load(open("params.yaml"))
    params["fusion"]["importance"] = "median"
    (custom_project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(InputError, match="fusion.importance"):
        split.main(["mine"])
    assert not (custom_project / "data/splits").exists()


def test_stage_cli_prints_one_clear_error_and_exits_2(custom_project):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "stages.split", "no-such-dataset"],
        capture_output=True,
        text=True,
        cwd=custom_project,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "error: params: unknown dataset 'no-such-dataset'" in result.stderr
    assert "Traceback" not in result.stderr


def test_parallel_seeds_give_the_same_models_as_serial(custom_project):
    import torch

    split.main(["mine"])
    models = {}
    for workers in (1, 2):
        params = yaml.safe_load(open("params.yaml"))
        params["train"].update(workers=workers, num_threads=1)
        (custom_project / "params.yaml").write_text(yaml.safe_dump(params))
        train.main(["mine"])
        models[workers] = [
            torch.load(f"models/mine/amc/seed{s}.pt", weights_only=False) for s in (0, 1)
        ]
    for serial, parallel in zip(models[1], models[2], strict=True):
        assert serial["best_epoch"] == parallel["best_epoch"]
        for key, value in serial["state_dict"].items():
            assert torch.equal(value, parallel["state_dict"][key]), key
    # the two seeds really are different trainings
    first = models[1][0]["state_dict"]
    assert any(not torch.equal(v, models[1][1]["state_dict"][k]) for k, v in first.items())


def test_train_workers_param_is_validated(custom_project):
    params = yaml.safe_load(open("params.yaml"))
    params["train"]["workers"] = "many"
    (custom_project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(InputError, match="train.workers"):
        split.main(["mine"])


def test_split_covers_every_patient_so_complete_case_runs_share_it(custom_project):
    from stages._dataset import cohort_for, split_for_seed
    from stages.params import load_params, run_params

    params = load_params()
    params["variants"]["mine-complete"] = {"dataset": "mine", "drop_incomplete": True}
    split.main(["mine"])
    full = cohort_for(run_params(params, "mine", "amc"))
    complete = cohort_for(run_params(params, "mine", "mine-complete"))
    assert len(complete) < len(full)  # modality b is missing for about 20% of patients
    whole = dict(zip(full.patient_ids, split_for_seed("mine", full, 0)))
    part = split_for_seed("mine", complete, 0)
    assert [whole[p] for p in complete.patient_ids] == list(part)
    meta = pd.read_parquet("data/splits/mine.parquet")
    assert len(meta) == 2 * len(full)


def test_curves_file_holds_every_seed_and_only_logged_curves(tmp_path):
    histories = {
        1: [
            {"loss": 0.9, "task": 0.8, "val_score": 0.5},
            {"loss": 0.7, "task": 0.6, "val_score": 0.6},
        ],
        0: [{"loss": 1.0, "task": 0.9, "balance": 0.01, "val_score": 0.4}],
    }
    path = tmp_path / "curves.tsv"
    evaluate.write_curves(histories, path)
    data = pd.read_csv(path, sep="\t")
    assert list(data.columns) == ["seed", "step", "loss", "task", "balance", "val_score"]
    assert data[["seed", "step"]].values.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert data["balance"].isna().tolist() == [False, True, True]  # seed 1 logged no balance
    assert data.loc[2, "loss"] == 0.7 and data.loc[2, "val_score"] == 0.6


def test_run_info_gives_amc_components_only_to_amc_runs(custom_project):
    """A baseline's settings hold only the keys it reads: AMC's module switches would be
    schema defaults there, so its run.json carries none."""
    from stages._dataset import cohort_for
    from stages.params import load_params, run_params

    params = yaml.safe_load(open("params.yaml"))
    params["baselines"] = {"late": yaml.safe_load(open(ROOT_PARAMS))["baselines"]["late"]}
    (custom_project / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_params()
    config = {"modalities": {"a": 12, "b": 20}, "num_classes": 2}
    cohort = cohort_for(run_params(loaded, "mine", "amc"))
    for method, family_has_components in (("amc", True), ("mine-std", True), ("late", False)):
        info = evaluate.run_info(run_params(loaded, "mine", method), cohort, config)
        assert (info["components"] is not None) == family_has_components, method
    std = evaluate.run_info(run_params(loaded, "mine", "mine-std"), cohort, config)
    assert std["components"]["token_fusion"] is True
