"""benchmarks/training_side_by_side.py: whole trainings of two trees, alternating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import benchmark_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tsbs():
    with benchmark_module("training_side_by_side") as module:
        yield module


def test_cohort_is_seeded_and_has_the_requested_shape(tsbs):
    cohort, split = tsbs.make_cohort(200, [7, 9, 5], seed=3)
    again, split_again = tsbs.make_cohort(200, [7, 9, 5], seed=3)
    assert [cohort.features[m].shape for m in cohort.modalities] == [(200, 7), (200, 9), (200, 5)]
    assert all(np.array_equal(cohort.features[m], again.features[m]) for m in cohort.modalities)
    assert np.array_equal(split, split_again)
    assert {s: int((split == s).sum()) for s in ("train", "val", "test")} == {
        "train": 140,
        "val": 30,
        "test": 30,
    }
    absent = ~cohort.present[:, -1]
    assert cohort.present[:, :-1].all() and 0 < absent.sum() < 60
    assert not cohort.features["m2"][absent].any()  # absent modalities hold zeros
    assert set(np.unique(cohort.labels)) == {0, 1}


def test_compare_alternates_whole_trainings_and_reports_ratio(tsbs, capsys):
    request = {"patients": 40, "features": [6, 5], "epochs": 2, "seed": 0}
    result = tsbs.compare(ROOT, ROOT, rounds=2, request=request)
    assert result["epochs"] == 2  # no early stop: every epoch runs
    assert result["base_cpu_s"] > 0 and result["new_cpu_s"] > 0
    assert result["speedup_min"] <= result["speedup"] <= result["speedup_max"]
    # the same tree, cohort and seed on both sides: the same trained model
    assert result["base_best_val"] == result["new_best_val"]
    assert capsys.readouterr().out.count("round ") == 2
