"""The method axis: runs from params, their resolved settings, the registry bridge."""

import copy

import pytest
import yaml

from amc.baselines import build_model
from amc.errors import InputError
from amc.methods import SHARED_FIELDS, training_config
from amc.model import AMC, AMCConfig
from stages._dataset import model_kwargs
from stages.params import list_runs, load_params, run_params


@pytest.fixture()
def params():
    return load_params("params.yaml")


def _write(tmp_path, tree):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_every_dataset_gets_amc_and_every_baseline_and_variants_their_dataset(params):
    runs = list_runs(params)
    for dataset in params["datasets"]:
        methods = {m for d, m in runs if d == dataset}
        assert {"amc", *params["baselines"]} <= methods
    for name, entry in params["variants"].items():
        assert (entry["dataset"], name) in runs
    assert len(runs) == len(set(runs))


def test_paper_variants_carry_their_switches_and_names(params):
    std = run_params(params, "mimic-iv", "mimic-iv-std")
    assert std["fusion"]["importance"] == "std" and std["label"] == "AMC w/ STD"
    assert std["train"]["epochs"] == params["datasets"]["mimic-iv"]["train"]["epochs"]
    missing = run_params(params, "adni", "adni-missing")
    assert missing["drop_incomplete"] is False and missing["label"] == "AMC w/ missing modality"
    lab = run_params(params, "mimic-iv", "mimic-iv-lab")
    assert lab["modalities"] == ["lab"] and 11 in lab["tables"]
    labels = {run_params(params, d, m)["label"] for d, m in list_runs(params) if d == "mimic-iv"}
    for name in (
        "AMC w/ Max",
        "AMC w/o Differential Attention",
        "AMC w/ Original Token Fusion",
        "AMC w/o Token Fusion",
        "AMC w/o Contrastive Loss",
        "AMC w/o SMoE",
        "AMC w/ paper K rule",
    ):
        assert name in labels


def test_baseline_sees_only_shared_model_keys(params):
    tree = copy.deepcopy(params)
    tree["model"]["experts"] = 16
    tree["fusion"]["importance"] = "max"
    a = run_params(params, "mimic-iv", "limoe")
    b = run_params(tree, "mimic-iv", "limoe")
    config_a = training_config(a["family"], model_kwargs(a), a["options"])
    config_b = training_config(b["family"], model_kwargs(b), b["options"])
    assert config_a == config_b  # AMC-only keys cannot change a baseline
    assert config_a["method"] == "limoe" and "experts" not in config_a
    assert set(config_a) <= {*SHARED_FIELDS, "num_bins", "method", "method_options"}
    maggate = run_params(params, "adni", "maggate")
    assert maggate["options"] == {"main": "mri"} and maggate["train"]["warmup_epochs"] == 0
    # and AMC gets every key
    amc = run_params(tree, "mimic-iv", "amc")
    assert training_config("amc", model_kwargs(amc))["experts"] == 16


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t["variants"].update(x={"dataset": "nope"}), "variants.x.dataset"),
        (
            lambda t: t["variants"].update(x={"dataset": "adni", "modalities": ["lab"]}),
            "variants.x.modalities",
        ),
        (
            lambda t: t["variants"].update(x={"dataset": "adni", "fusion": {"importance": "z"}}),
            "fusion.importance",
        ),
        (lambda t: t["baselines"].update(x={"label": "X"}), "baselines.x.family"),
        (
            lambda t: t["baselines"].update(x={"family": "tf", "model": {"experts": 2}}),
            "baselines.x.model.experts",
        ),
        (lambda t: t["baselines"].update(amc={"family": "tf"}), "'amc' is used twice"),
        (lambda t: t["variants"].update(x={"dataset": "adni", "colour": 1}), "variants.x.colour"),
        (lambda t: t["baselines"].update(x={"family": "tf", "seeds": [99]}), "baselines.x.seeds"),
    ],
)
def test_bad_method_entries_name_the_key(tmp_path, params, edit, match):
    tree = copy.deepcopy(params)
    edit(tree)
    with pytest.raises(InputError, match=match):
        load_params(_write(tmp_path, tree))


def test_unknown_method_and_wrong_dataset_for_a_variant(params):
    with pytest.raises(InputError, match="unknown method 'nope'"):
        run_params(params, "adni", "nope")
    with pytest.raises(InputError, match="runs on 'mimic-iv'"):
        run_params(params, "adni", "mimic-iv-std")


def test_build_amc_through_the_bridge(params):
    ds = run_params(params, "mimic-iv", "mimic-iv-dense")
    fields = training_config("amc", model_kwargs(ds))
    config = AMCConfig(**fields, modalities={"a": 8, "b": 6}, num_classes=2)
    model = build_model("amc", config, {})
    assert isinstance(model, AMC) and config.ffn == "dense"


def test_paper_profile_applies_table_7_and_keeps_comments(tmp_path, monkeypatch):
    from pathlib import Path

    from stages import profile

    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "params.yaml"
    target.write_text((repo / "params.yaml").read_text())
    profile.main([str(repo / "profiles/paper.yaml"), str(target)])
    params = load_params(target)
    mimic = run_params(params, "mimic-iv", "amc")
    assert mimic["train"]["epochs"] == 100 and mimic["train"]["warmup_epochs"] == 10
    assert run_params(params, "mimic-iv", "tf")["train"]["epochs"] == 100  # like AMC
    assert run_params(params, "adni", "tf")["train"]["lr"] == 0.0001
    assert params["sources"]["mimic"]["synthetic"]["n_patients"] == 9003
    assert "# amc-pipeline parameters" in target.read_text()


def test_a_method_may_train_on_a_subset_of_the_seeds(params):
    tree = copy.deepcopy(params)
    tree["baselines"]["tf"]["seeds"] = [0, 2]
    assert run_params(tree, "adni", "tf")["split"]["seeds"] == [0, 2]
    assert run_params(tree, "adni", "amc")["split"]["seeds"] == params["split"]["seeds"]


@pytest.mark.parametrize("pooling", ["importance", "deficit"])
def test_deficit_rule_and_shared_head_poolings_are_named(params, pooling):
    tree = copy.deepcopy(params)
    tree["variants"]["mimic-iv-candidate"] = {
        "dataset": "mimic-iv",
        "fusion": {"importance": "alignment", "replace_rule": "deficit", "pooling": pooling},
    }
    label = run_params(tree, "mimic-iv", "mimic-iv-candidate")["label"]
    assert label == f"AMC w/ Alignment, w/ deficit K rule, w/ {pooling} pooling"


def test_importance_weighted_modality_heads_are_named(params):
    tree = copy.deepcopy(params)
    tree["variants"]["mimic-iv-heads"] = {
        "dataset": "mimic-iv",
        "fusion": {"importance": "alignment", "pooling": "importance_logits"},
    }
    entry = run_params(tree, "mimic-iv", "mimic-iv-heads")
    assert entry["label"] == "AMC w/ Alignment, w/ importance-weighted modality heads"
    assert entry["loss"]["modality_heads"] == 1.0  # the key's default reaches the run
