"""params.yaml loading and up-front validation."""

import copy

import pytest
import yaml

from amc.errors import InputError
from stages.params import dataset_params, load_params


@pytest.fixture()
def params():
    return load_params("params.yaml")


def _write(tmp_path, tree):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_repository_params_are_valid(params):
    for name in params["datasets"]:
        ds = dataset_params(params, name)
        assert ds["model"]["experts"] == params["model"]["experts"]


def test_dataset_overrides_win_and_globals_fill_in(params):
    ds = dataset_params(params, "mimic-iv")
    assert ds["train"]["epochs"] == params["datasets"]["mimic-iv"]["train"]["epochs"]
    assert ds["train"]["device"] == params["train"]["device"]


@pytest.mark.parametrize(
    "key, value, match",
    [
        (("model", "attention"), "linear", "model.attention"),
        (("model", "top_k"), 99, "model.top_k"),
        (("fusion", "importance"), "median", "fusion.importance"),
        (("train", "device"), "tpu", "train.device"),
        (("split", "fractions"), [0.5, 0.5, 0.5], "split.fractions"),
        (("model", "heads"), 5, "model.hidden"),
        (("train", "lr"), -1, "train.lr"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, params, key, value, match):
    tree = copy.deepcopy(params)
    tree[key[0]][key[1]] = value
    with pytest.raises(InputError, match=match.replace(".", r"\.")):
        load_params(_write(tmp_path, tree))


def test_unknown_key_and_dataset_override_errors(tmp_path, params):
    tree = copy.deepcopy(params)
    tree["model"]["expertz"] = 4
    with pytest.raises(InputError, match="model.expertz"):
        load_params(_write(tmp_path, tree))
    tree = copy.deepcopy(params)
    tree["datasets"]["mimic-iv"]["train"]["batch_size"] = 0
    with pytest.raises(InputError, match=r"datasets\.mimic-iv\.train\.batch_size"):
        load_params(_write(tmp_path, tree))


def test_custom_dataset_needs_tables(tmp_path, params):
    tree = copy.deepcopy(params)
    tree["datasets"]["mine"] = {
        "kind": "custom",
        "task": "classification",
        "features_dir": "data/mine",
    }
    with pytest.raises(InputError, match="custom dataset 'mine'"):
        load_params(_write(tmp_path, tree))


def test_params_reference_is_in_sync():
    """docs/params.md is generated from the schema: `python -m amc.config docs/params.md`."""
    from pathlib import Path

    from amc.config import render_reference

    assert Path("docs/params.md").read_text() == render_reference(), (
        "docs/params.md is stale: run `python -m amc.config docs/params.md`"
    )


def test_misspelt_key_names_the_nearest_valid_key(tmp_path, params):
    tree = copy.deepcopy(params)
    tree["sources"]["tcga"]["wsi"]["min_tisue"] = 0.3
    with pytest.raises(InputError, match=r"sources\.tcga\.wsi\.min_tisue(.|\n)*'min_tissue'"):
        load_params(_write(tmp_path, tree))


def test_missing_keys_take_schema_defaults(tmp_path, params):
    tree = copy.deepcopy(params)
    del tree["importance_study"]
    del tree["sources"]["tcga"]["wsi"]["num_workers"]
    loaded = load_params(_write(tmp_path, tree))
    assert loaded["importance_study"] == {
        "seeds": [0, 1, 2],
        "quick": False,
        "grid": "default",
        "n_patients": 600,
        "task_side": "goal",
        "label_noise": 0.5,
        "private_latent": 0,
    }
    assert loaded["sources"]["tcga"]["wsi"]["num_workers"] == 2


def test_settings_objects_are_built_from_the_schema(params):
    from dataclasses import asdict

    from amc.config import model_kwargs, train_settings
    from amc.model import AMCConfig

    ds = dataset_params(params, "tcga-ucec")
    settings = asdict(train_settings(ds))
    assert settings["epochs"] == ds["train"]["epochs"] and settings["balance"] == 0.01
    assert "workers" not in settings and "temperature" not in settings
    config = AMCConfig(modalities={"rna": 8}, **model_kwargs(ds))
    assert config.hidden == 128 and config.fusion is True and config.num_bins == 4


def test_misspelt_choice_names_the_nearest_allowed_value(tmp_path, params):
    tree = copy.deepcopy(params)
    tree["model"]["attention"] = "diferential"
    with pytest.raises(InputError, match=r"model\.attention(.|\n)*did you mean 'differential'"):
        load_params(_write(tmp_path, tree))
