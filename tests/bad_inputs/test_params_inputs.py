"""Bad params.yaml values and keys: each stops the stage CLI with exit code 2, names the key and
the nearest valid key (or the allowed values), and writes nothing."""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path

import pytest
import yaml

from stages._cli import run

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def _set(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[last] = value


def _rename(tree: dict, dotted: str, new_name: str) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[new_name] = node.pop(last)


# id -> (edit of the repository's params, stage argv, words the message must hold)
CASES = {
    "misspelt top-level block": (
        lambda t: _rename(t, "train", "trian"),
        ["split", "mimic-iv"],
        ["trian", "'train'"],
    ),
    "negative max_features": (
        lambda t: _set(t, "datasets.tcga-ucec.max_features", {"rna": -5}),
        ["split", "tcga-ucec"],
        ["datasets.tcga-ucec.max_features", "positive integer"],
    ),
    "misspelt model key": (
        lambda t: _rename(t, "model.experts", "expertz"),
        ["train", "mimic-iv"],
        ["model.expertz", "'experts'"],
    ),
    "misspelt wsi key": (
        lambda t: _rename(t, "sources.tcga.wsi.patch_size", "patch_szie"),
        ["extract", "tcga", "wsi"],
        ["sources.tcga.wsi.patch_szie", "'patch_size'"],
    ),
    "string lab window": (
        lambda t: _set(t, "sources.mimic.lab_window_hours", "48h"),
        ["extract", "mimic", "lab"],
        ["sources.mimic.lab_window_hours", "positive integer"],
    ),
    "two-axis mri shape": (
        lambda t: _set(t, "sources.adni.mri_shape", [32, 32]),
        ["extract", "adni", "mri"],
        ["sources.adni.mri_shape", "3 values"],
    ),
    "empty importance seeds": (
        lambda t: _set(t, "importance_study.seeds", []),
        ["split", "mimic-iv"],
        ["importance_study.seeds", "non-empty list"],
    ),
    "string importance quick": (
        lambda t: _set(t, "importance_study.quick", "yes"),
        ["split", "mimic-iv"],
        ["importance_study.quick", "true | false"],
    ),
    "importance private latent out of range": (
        lambda t: _set(t, "importance_study.private_latent", 8),
        ["split", "mimic-iv"],
        ["importance_study.private_latent", "0..7"],
    ),
    "misspelt importance key": (
        lambda t: _rename(t, "importance_study.quick", "quik"),
        ["split", "mimic-iv"],
        ["importance_study.quik", "'quick'"],
    ),
    "misspelt dataset override block": (
        lambda t: _rename(t, "datasets.mimic-iv.train", "tain"),
        ["split", "mimic-iv"],
        ["datasets.mimic-iv.tain", "'train'"],
    ),
    "misspelt dataset override key": (
        lambda t: _rename(t, "datasets.mimic-iv.train.epochs", "epocs"),
        ["train", "mimic-iv"],
        ["datasets.mimic-iv.train.epocs", "'epochs'"],
    ),
    "unknown importance estimator": (
        lambda t: _set(t, "fusion.importance", "median"),
        ["train", "adni"],
        ["fusion.importance", "mean | std | max | alignment"],
    ),
    "unknown rna value column": (
        lambda t: _set(t, "sources.tcga.rna_value", "tpm"),
        ["extract", "tcga", "rna"],
        ["sources.tcga.rna_value", "tpm_unstranded"],
    ),
    "fractions not summing to 1": (
        lambda t: _set(t, "split.fractions", [0.5, 0.5, 0.5]),
        ["split", "adni"],
        ["split.fractions", "summing to 1"],
    ),
    "encoder for a misspelt modality": (
        lambda t: _set(t, "datasets.adni.encoders", {"mir": "volume"}),
        ["split", "adni"],
        ["datasets.adni.encoders.mir", "'mri'"],
    ),
    "misspelt dataset kind": (
        lambda t: _set(t, "datasets.tcga-ucec.kind", "tgca"),
        ["split", "tcga-ucec"],
        ["datasets.tcga-ucec.kind", "mimic | tcga | adni | custom"],
    ),
    "zero train workers": (
        lambda t: _set(t, "train.workers", 0),
        ["train", "mimic-iv"],
        ["train.workers", "auto"],
    ),
    "misspelt tcga file key": (
        lambda t: _rename(t, "sources.tcga.files.slides", "slide"),
        ["synthesize", "tcga"],
        ["sources.tcga.files.slide", "'slides'"],
    ),
    "misspelt source block": (
        lambda t: _rename(t, "sources.mimic", "mimik"),
        ["synthesize", "mimic"],
        ["sources.mimik", "'mimic'"],
    ),
    "block that is not a mapping": (
        lambda t: _set(t, "model", 5),
        ["split", "mimic-iv"],
        ["model", "mapping"],
    ),
    "zero max patches": (
        lambda t: _set(t, "sources.tcga.wsi.max_patches", 0),
        ["extract", "tcga", "wsi"],
        ["sources.tcga.wsi.max_patches", "null or a positive integer"],
    ),
    "hidden not a multiple of 2*heads": (
        lambda t: _set(t, "datasets.mimic-iv.model", {"hidden": 100}),
        ["split", "mimic-iv"],
        ["datasets.mimic-iv.model.hidden", "multiple of 2*model.heads"],
    ),
    "negative synthetic size": (
        lambda t: _set(t, "sources.adni.synthetic.n_subjects", -3),
        ["synthesize", "adni"],
        ["sources.adni.synthetic.n_subjects", "positive integer"],
    ),
    "misspelt dataset name": (
        lambda t: None,
        ["split", "mimic-iv2"],
        ["mimic-iv2", "'mimic-iv'"],
    ),
}


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """An empty working folder holding only a copy of the repository's params.yaml."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_params_exit_2_naming_the_key(case, project, monkeypatch, capsys):
    edit, argv, words = CASES[case]
    tree = yaml.safe_load(REPO_PARAMS.read_text())
    edited = copy.deepcopy(tree)
    edit(edited)
    (project / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    stage = importlib.import_module(f"stages.{argv[0]}")
    monkeypatch.setattr(sys, "argv", [f"stages.{argv[0]}", *argv[1:]])
    with pytest.raises(SystemExit) as exit_info:
        run(stage.main)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert _files(project) == [Path("params.yaml")]  # nothing written


def test_repository_params_pass_unchanged(project):
    from amc.config import load_params

    (project / "params.yaml").write_text(REPO_PARAMS.read_text())
    params = load_params()
    assert params["datasets"]["tcga-ucec"]["max_features"] == {"rna": 1000}
