"""Patient splits: sizes, disjointness, stratification, determinism, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amc.data.splits import check_split_has_classes, make_splits, split_sizes
from amc.errors import InputError


def _cohort(n: int = 200, seed: int = 0, prevalence=(0.6, 0.3, 0.1)):
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:04d}" for i in range(n)])
    labels = rng.choice(len(prevalence), size=n, p=prevalence)
    return ids, labels


@pytest.mark.parametrize("n", [20, 61, 200])
def test_sizes_disjoint_cover(n):
    ids, labels = _cohort(n, prevalence=(0.6, 0.4))
    df = make_splits(ids, labels, seeds=[0, 1])
    assert list(df.columns) == ["patient_id", "seed", "split"]
    assert len(df) == 2 * n
    for _seed, part in df.groupby("seed"):
        assert part["patient_id"].is_unique
        assert set(part["patient_id"]) == set(ids)
        sizes = part["split"].value_counts()
        for name, frac in zip(["train", "val", "test"], [0.7, 0.15, 0.15]):
            assert abs(sizes[name] - n * frac) <= 1, (name, sizes[name], n * frac)
    assert set(df["split"]) == {"train", "val", "test"}


def test_stratification_keeps_class_ratio():
    ids, labels = _cohort(400, prevalence=(0.55, 0.3, 0.15))
    lab = pd.Series(labels, index=ids)
    df = make_splits(ids, labels, seeds=[0, 1, 2])
    overall = lab.value_counts(normalize=True)
    for _, part in df.groupby(["seed", "split"]):
        ratio = lab.loc[part["patient_id"]].value_counts(normalize=True)
        for cls in overall.index:
            assert abs(ratio.get(cls, 0.0) - overall[cls]) <= 0.05


def test_every_split_gets_every_class_even_when_rare():
    ids, labels = _cohort(40, prevalence=(0.9, 0.1))
    labels[:3] = 1  # at least 3 of the rare class
    lab = pd.Series(labels, index=ids)
    df = make_splits(ids, labels, seeds=[0, 1, 2, 3])
    for _, part in df.groupby(["seed", "split"]):
        assert lab.loc[part["patient_id"]].nunique() == 2


def test_deterministic_and_seeds_differ():
    ids, labels = _cohort(100)
    a = make_splits(ids, labels, seeds=[3, 7])
    b = make_splits(ids, labels, seeds=[3, 7])
    pd.testing.assert_frame_equal(a, b)
    s3 = a[a.seed == 3].set_index("patient_id")["split"]
    s7 = a[a.seed == 7].set_index("patient_id")["split"]
    assert (s3 != s7).sum() > 10
    # a seed's split does not depend on the other seeds requested
    alone = make_splits(ids, labels, seeds=[7])
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True), a[a.seed == 7].reset_index(drop=True)
    )


def test_input_order_does_not_matter():
    ids, labels = _cohort(90)
    perm = np.random.default_rng(1).permutation(len(ids))
    a = make_splits(ids, labels, seeds=[0, 1])
    b = make_splits(ids[perm], labels[perm], seeds=[0, 1])
    pd.testing.assert_frame_equal(a, b)


def test_survival_strata_by_event():
    rng = np.random.default_rng(2)
    ids = [f"TCGA-{i:03d}" for i in range(60)]
    event = (rng.random(60) < 0.3).astype(int)
    df = make_splits(ids, event, seeds=[0])
    ev = pd.Series(event, index=ids)
    for _, part in df.groupby("split"):
        assert ev.loc[part["patient_id"]].nunique() == 2


def test_tiny_class_error_names_class_and_counts():
    ids, labels = _cohort(50, prevalence=(0.5, 0.5))
    labels = labels.astype(object)
    labels[:2] = "AD"
    labels[2:] = np.where(labels[2:] == 0, "CN", "MCI")
    with pytest.raises(InputError, match=r"'AD' has 2") as err:
        make_splits(ids, labels, seeds=[0])
    assert "hint" in str(err.value)


def test_other_errors():
    ids, labels = _cohort(30, prevalence=(0.5, 0.5))
    dup = ids.copy()
    dup[5] = dup[4]
    with pytest.raises(InputError, match="duplicate patient_id 'P0004'"):
        make_splits(dup, labels, seeds=[0])
    with pytest.raises(InputError, match="only one class"):
        make_splits(ids, np.zeros(30), seeds=[0])
    with pytest.raises(InputError, match="fewer than the"):
        make_splits(ids[:9], np.array([0, 0, 0, 1, 1, 1, 2, 2, 2]), seeds=[0])
    with pytest.raises(InputError, match="sum to"):
        make_splits(ids, labels, seeds=[0], fractions=(0.7, 0.2, 0.2))
    with pytest.raises(InputError, match="unique"):
        make_splits(ids, labels, seeds=[1, 1])
    with pytest.raises(InputError, match="strata"):
        make_splits(ids, labels[:-1], seeds=[0])
    with pytest.raises(InputError, match="NaN stratum"):
        make_splits(ids, np.where(np.arange(30) == 3, np.nan, 1.0), seeds=[0])


def test_split_sizes():
    assert split_sizes(100, (0.7, 0.15, 0.15)) == (70, 15, 15)
    assert sum(split_sizes(101, (0.7, 0.15, 0.15))) == 101


def test_check_split_has_classes(caplog):
    check_split_has_classes(
        {"train": np.array([0, 1, 1]), "val": np.array([0, 1]), "test": np.array([1, 0])}, "x"
    )
    with pytest.raises(InputError, match=r"mimic-iv: split 'test' has only one class") as err:
        check_split_has_classes(
            {"train": np.array([0, 1]), "val": np.array([0, 1]), "test": np.array([1, 1])},
            "mimic-iv",
        )
    assert "{1: 2}" in str(err.value)
    with pytest.raises(InputError, match="empty"):
        check_split_has_classes({"train": np.array([0, 1]), "val": np.array([])}, "adni")
    with caplog.at_level("WARNING"):
        check_split_has_classes({"train": np.array([0, 1, 2]), "val": np.array([0, 1])}, "adni")
    assert "lacks class(es) [2]" in caplog.text


def test_allocation_exact_totals_on_random_cohorts():
    rng = np.random.default_rng(0)
    for _ in range(150):
        k = int(rng.integers(2, 6))
        counts = rng.integers(3, 40, size=k)
        labels = np.repeat(np.arange(k), counts)
        n = labels.size
        raw = rng.uniform(0.1, 1.0, size=3)
        fractions = tuple(raw / raw.sum())
        totals = split_sizes(n, fractions)
        ids = [f"p{i}" for i in range(n)]
        if min(totals) < k:
            with pytest.raises(InputError):
                make_splits(ids, labels, seeds=[0], fractions=fractions)
            continue
        df = make_splits(ids, labels, seeds=[0], fractions=fractions)
        table = pd.crosstab(labels[df["patient_id"].str[1:].astype(int)], df["split"])
        assert (table.to_numpy() >= 1).all()
        assert tuple(table.sum()[["train", "val", "test"]]) == totals
        # each stratum's share of a split is within 1 + K patients of its ideal
        ideal = np.outer(counts, totals) / n
        got = table.loc[:, ["train", "val", "test"]].to_numpy()
        assert np.abs(got - ideal).max() <= 1 + k
