"""Bad split tables (train / evaluate read them) and bad checkpoints (evaluate reads them):
exit 2, a message naming the file and the seed / patient / modality, and no output written."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from amc.data.store import write_table
from tests.bad_inputs.conftest import DATASET, assert_failed, assert_no_output, snapshot


def _split_table(project) -> pd.DataFrame:
    return pd.read_parquet(project.splits)


def _missing_seed(df):
    return df.assign(seed=7), "seed 0"


def _missing_patient(df):
    return df.iloc[1:], df["patient_id"].iloc[0]


def _duplicate_patient(df):
    return pd.concat([df, df.iloc[[2]]], ignore_index=True), df["patient_id"].iloc[2]


def _unknown_split(df):
    df = df.copy()
    df.loc[4, "split"] = "holdout"
    return df, "holdout"


def _no_split_column(df):
    return df.drop(columns=["split"]), "'split'"


def _empty(df):
    return df.iloc[:0], "no rows"


SPLIT_CASES = {
    "split_missing_seed": _missing_seed,
    "split_missing_patient": _missing_patient,
    "split_duplicate_patient": _duplicate_patient,
    "split_unknown_name": _unknown_split,
    "split_no_split_column": _no_split_column,
    "split_empty": _empty,
}


@pytest.mark.parametrize("stage", ["train", "evaluate"])
@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
def test_bad_split_table_is_named(project, run_stage, case, stage):
    df, named = SPLIT_CASES[case](_split_table(project))
    write_table(df, project.splits, allow_empty=True)
    before = snapshot(project.root)
    assert_failed(run_stage(stage, DATASET), 2, str(project.splits), named)
    assert_no_output(project.root, before)


def test_split_table_missing(project, run_stage):
    project.splits.unlink()
    before = snapshot(project.root)
    assert_failed(run_stage("train", DATASET), 2, str(project.splits), "not found")
    assert_no_output(project.root, before)


def test_checkpoint_missing(project, run_stage):
    project.checkpoint().unlink()
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), f"train@{DATASET}")
    assert_no_output(project.root, before)


def test_checkpoint_not_a_checkpoint(project, run_stage):
    project.checkpoint().write_bytes(b"\x00garbage, not a zip archive" * 10)
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "not a readable checkpoint")
    assert_no_output(project.root, before)


def test_checkpoint_truncated(project, run_stage):
    data = project.checkpoint().read_bytes()
    project.checkpoint().write_bytes(data[: len(data) // 3])
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "not a readable checkpoint")
    assert_no_output(project.root, before)


def test_checkpoint_of_other_modalities(project, run_stage):
    ckpt = torch.load(project.checkpoint(), weights_only=False)
    ckpt["modalities"] = ["a", "rna"]
    torch.save(ckpt, project.checkpoint())
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "'rna'", f"train@{DATASET}")
    assert_no_output(project.root, before)


def test_checkpoint_of_other_classes(project, run_stage):
    ckpt = torch.load(project.checkpoint(), weights_only=False)
    ckpt["class_names"] = ["no", "yes"]
    torch.save(ckpt, project.checkpoint())
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "'yes'")
    assert_no_output(project.root, before)


def test_checkpoint_without_weights(project, run_stage):
    torch.save({"history": []}, project.checkpoint())
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "state_dict")
    assert_no_output(project.root, before)


def test_corrupt_resume_state_restarts_training(project, run_stage, caplog):
    """Documented handling: an unreadable resume file is ignored with a warning, not fatal."""
    reference = project.checkpoint().read_bytes()
    resume = project.root / ".cache/train" / DATASET / "amc" / "seed0.resume.pt"
    assert resume.exists()
    resume.write_bytes(b"PK\x03\x04 truncated")
    with caplog.at_level("WARNING"):
        assert run_stage("train", DATASET).code == 0
    assert any(str(resume.name) in r.getMessage() for r in caplog.records)
    assert project.checkpoint().read_bytes() == reference


def test_checkpoint_of_other_feature_width(project, run_stage):
    """The feature table changed since training (DVC would retrain; a manual run must not
    crash inside predict)."""
    from amc.data.store import read_features, write_features

    ids, feats, meta = read_features(project.features["a"])
    write_features(project.features["a"], ids, feats[:, :-2], meta)
    before = snapshot(project.root)
    result = run_stage("evaluate", DATASET)
    assert_failed(result, 2, str(project.checkpoint()), "'a'", "12")
    assert_no_output(project.root, before)
