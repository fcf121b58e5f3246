"""Bad label tables (classification and survival): exit 2 from the split stage, a message naming
the file and the patient id or column, and no output written."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from amc.data.store import write_table
from tests.bad_inputs.conftest import (
    DATASET,
    Project,
    assert_failed,
    assert_no_output,
    build_project,
    snapshot,
)


def duplicate_id(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return pd.concat([df, df.iloc[[3]]], ignore_index=True), df["patient_id"].iloc[3]


def empty_table(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.iloc[:0], "no rows"


def no_label_column(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.drop(columns=["label"]), "'label'"


def no_patient_id(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.drop(columns=["patient_id"]), "'patient_id'"


def missing_label(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.astype({"label": float})
    df.loc[4, "label"] = np.nan
    return df, df["patient_id"].iloc[4]


def blank_label(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.astype({"label": str})
    df.loc[6, "label"] = " "
    return df, df["patient_id"].iloc[6]


def one_class(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.assign(label=1), "only one class"


def float_ids(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.assign(patient_id=np.arange(len(df), dtype=float)), "patient_id"


def null_id(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.copy()
    df.loc[2, "patient_id"] = None
    return df, "row 2"


def patient_in_no_modality(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    ghost = pd.DataFrame({"patient_id": ["GHOST-7"], "label": [1]})
    return pd.concat([df, ghost], ignore_index=True), "GHOST-7"


CLASSIFICATION: dict[str, Callable[[pd.DataFrame], tuple[pd.DataFrame, str]]] = {
    f.__name__: f
    for f in (
        duplicate_id,
        empty_table,
        no_label_column,
        no_patient_id,
        missing_label,
        blank_label,
        one_class,
        float_ids,
        null_id,
        patient_in_no_modality,
    )
}


@pytest.mark.parametrize("case", sorted(CLASSIFICATION))
def test_bad_label_table_is_named_and_nothing_is_written(project, run_stage, case):
    df, named = CLASSIFICATION[case](pd.read_parquet(project.labels))
    write_table(df, project.labels, allow_empty=True)  # as another tool might write it
    before = snapshot(project.root)
    assert_failed(run_stage("split", DATASET), 2, str(project.labels), named)
    assert_no_output(project.root, before)


def test_label_file_missing(project, run_stage):
    project.labels.unlink()
    before = snapshot(project.root)
    assert_failed(run_stage("split", DATASET), 2, str(project.labels), "not found")
    assert_no_output(project.root, before)


@pytest.fixture()
def survival_project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "survival"
    build_project(root, task="survival")
    monkeypatch.chdir(root)
    return Project(root)


def _words(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    # a time column entirely unparseable: the count says it is every row
    return df.assign(time=["ten days"] * len(df)), f"{len(df)} of {len(df)}"


def _one_unparseable(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.astype({"time": str})  # a text column (as from a CSV) with one bad value
    df.loc[5, "time"] = "n/a"
    return df, df["patient_id"].iloc[5]


def _negative(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.copy()
    df.loc[3, "time"] = -4.0
    return df, df["patient_id"].iloc[3]


def _infinite(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.copy()
    df.loc[8, "time"] = np.inf
    return df, df["patient_id"].iloc[8]


def _event_two(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.copy()
    df.loc[1, "event"] = 2
    return df, df["patient_id"].iloc[1]


def _no_event(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    return df.drop(columns=["event"]), "'event'"


SURVIVAL = {
    "time_entirely_unparseable": _words,
    "time_one_unparseable": _one_unparseable,
    "time_negative": _negative,
    "time_infinite": _infinite,
    "event_not_binary": _event_two,
    "event_column_missing": _no_event,
}


@pytest.mark.parametrize("case", sorted(SURVIVAL))
def test_bad_survival_labels_are_named(survival_project, run_stage, case):
    df, named = SURVIVAL[case](pd.read_parquet(survival_project.labels))
    write_table(df, survival_project.labels, allow_empty=True)
    before = snapshot(survival_project.root)
    assert_failed(run_stage("split", DATASET), 2, str(survival_project.labels), named)
    assert_no_output(survival_project.root, before)
