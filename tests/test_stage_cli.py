"""Every stage is a small CLI: --help works, paths come from the command line, exit codes 0 / 2."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages._cli import STAGES, console, run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_has_help(stage, capsys):
    module = importlib.import_module(f"stages.{stage}")
    with pytest.raises(SystemExit) as exit_info:
        run(module.main, ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: python -m stages.{stage}" in out


def test_help_from_the_command_line():
    """`python -m stages.train --help` used to fail with "unknown dataset '--help'"."""
    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--models" in result.stdout and "--splits" in result.stdout


def test_console_lists_stages_and_runs_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        console(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    assert all(stage in listing for stage in STAGES)
    with pytest.raises(SystemExit) as exit_info:
        console(["trian"])
    assert exit_info.value.code == 2
    assert "unknown stage 'trian'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        console(["split", "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


@pytest.mark.parametrize(
    "stage, argv, words",
    [
        ("split", [], "the following arguments are required: dataset"),
        ("extract", ["tcga"], "the following arguments are required: modality"),
        ("synthesize", ["tgca"], "invalid choice: 'tgca'"),
        ("extract", ["tgca", "rna"], "unknown source 'tgca'"),
        ("train", ["mimic-iv", "--model", "x"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2(stage, argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    module = importlib.import_module(f"stages.{stage}")
    with pytest.raises(SystemExit) as exit_info:
        run(module.main, argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_output_path_comes_from_the_command_line(tmp_path, monkeypatch):
    from stages import split
    from tests.helpers import custom_dataset

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {"mine": custom_dataset(tmp_path / "mine", n=60)}
    params["variants"] = {}  # the repository's variants name its own datasets
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    split.main(["mine", "--out", "elsewhere/mine-splits.parquet"])
    assert (tmp_path / "elsewhere/mine-splits.parquet").exists()
    assert not (tmp_path / "data").exists()


def test_dvc_commands_name_every_output_path():
    """One source of truth: each stage's cmd in dvc.yaml (and pipelines/*/dvc.yaml, the run
    stages) names the paths it writes."""
    stages = {}
    for path in (ROOT / "dvc.yaml", *sorted((ROOT / "pipelines").glob("*/dvc.yaml"))):
        stages.update(yaml.safe_load(path.read_text())["stages"])
    assert "--out data/synthetic/${item}" in stages["synthesize"]["do"]["cmd"]
    assert "--out data/features/${item.source}/${item.modality}.parquet" in " ".join(
        stages["extract"]["do"]["cmd"].split()
    )
    assert "--out data/splits/${key}.parquet" in stages["split"]["do"]["cmd"]
    amc = " ".join(stages["run"]["do"]["cmd"].split())
    assert "--models models/${key}/amc" in amc and "--out reports/runs/${key}/amc" in amc
    baseline = " ".join(stages["run-baseline"]["cmd"].split())
    assert "--models models/${item.dataset}/${item.method}" in baseline
    assert "--out reports/runs/${item.dataset}/${item.method}" in baseline
    variant = " ".join(stages["run-variant"]["do"]["cmd"].split())
    assert "--models models/${item.dataset}/${key}" in variant
    assert "--out reports/runs/${item.dataset}/${key}" in variant
    assert "--out reports/importance" in stages["importance"]["cmd"]
