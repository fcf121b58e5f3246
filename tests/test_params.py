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
