"""benchmarks/pipeline_side_by_side.py: the AMC stages of two revisions' pipelines, alternating."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import benchmark_module


@pytest.fixture(scope="module")
def psbs():
    with benchmark_module("pipeline_side_by_side") as module:
        yield module


def test_amc_stages_follow_the_revision_layout(psbs, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    # the first pipelines: a train and an evaluate stage per dataset in the root dvc.yaml
    assert psbs.amc_stages(first, ["tcga-ucec", "adni"]) == [
        "train@tcga-ucec",
        "evaluate@tcga-ucec",
        "train@adni",
        "evaluate@adni",
    ]
    split = tmp_path / "split"
    (split / "pipelines" / "amc").mkdir(parents=True)
    (split / "pipelines" / "amc" / "dvc.yaml").write_text("stages: {}\n")
    assert psbs.amc_stages(split, ["tcga-ucec", "adni"]) == [
        "pipelines/amc/dvc.yaml:run@tcga-ucec",
        "pipelines/amc/dvc.yaml:run@adni",
    ]


def test_summarise_pairs_rounds_and_normalises_by_epochs(psbs):
    rounds = {
        "base": [{"wall_s": 120.0, "epochs": 400}, {"wall_s": 150.0, "epochs": 400}],
        "new": [{"wall_s": 60.0, "epochs": 300}, {"wall_s": 50.0, "epochs": 300}],
    }
    result = psbs.summarise(rounds)
    assert result["speedup"] == pytest.approx(2.5)  # median of 2.0 and 3.0
    assert (result["speedup_min"], result["speedup_max"]) == (
        pytest.approx(2.0),
        pytest.approx(3.0),
    )
    # per epoch: the new side trained fewer epochs, so its time per epoch gains less
    assert result["speedup_per_epoch"] == pytest.approx((2.0 * 0.75 + 3.0 * 0.75) / 2)
    assert result["base_wall_s"] == 135.0 and result["new_wall_s"] == 55.0
    assert (result["base_epochs"], result["new_epochs"]) == (400, 300)
    with pytest.raises(ValueError, match="no rounds"):
        psbs.summarise({"base": [], "new": []})


def _tool(tree, name: str, script: str) -> None:
    """An executable ``name`` in ``tree``'s own environment (``.venv/bin``)."""
    path = tree / ".venv" / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def test_failed_repro_names_the_tree_and_shows_the_log(psbs, tmp_path):
    tree = tmp_path / "tree"
    _tool(tree, "dvc", 'echo "ERROR: failed to reproduce $4" >&2; exit 255')
    log = tmp_path / "base.log"
    with pytest.raises(RuntimeError) as failure:
        psbs.dvc_repro(tree, ["train@tcga-ucec"], force=True, log=log)
    message = str(failure.value)
    assert str(tree) in message and str(log) in message and "exit 255" in message
    assert "dvc repro --force --single-item train@tcga-ucec" in message
    assert "ERROR: failed to reproduce train@tcga-ucec" in message  # the log's tail


def test_missing_environment_gets_a_hint(psbs, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match=r"make \.venv/\.installed"):
        psbs.dvc_repro(tmp_path, ["run@x"], force=False, log=tmp_path / "new.log")


def test_cli_refuses_zero_rounds(psbs, capsys):
    with pytest.raises(SystemExit):
        psbs.main(["--against", "HEAD", "--rounds", "0"])
    assert "--rounds=0 must be at least 1" in capsys.readouterr().err


def test_epochs_are_read_from_either_checkpoint_layout(psbs, tmp_path):
    import torch

    _tool(tmp_path, "python", f'exec "{sys.executable}" "$@"')
    for layout in ("models/tcga-ucec/seed{}.pt", "models/tcga-luad/amc/seed{}.pt"):
        for seed, epochs in enumerate((3, 5)):
            path = tmp_path / layout.format(seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"history": [{}] * epochs}, path)
    assert psbs.trained_epochs(Path(tmp_path), ["tcga-ucec", "tcga-luad"]) == {
        "tcga-ucec": [3, 5],
        "tcga-luad": [3, 5],
    }
