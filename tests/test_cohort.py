"""Cohort assembly, bad-input errors, and train-split-only preprocessing."""

import numpy as np
import pandas as pd
import pytest

from amc.data.cohort import load_cohort
from amc.data.preprocess import fit_scaler
from amc.data.store import read_features, write_features, write_table
from amc.errors import InputError
from tests.helpers import toy_dataset


def test_missing_modality_is_masked_not_dropped(tmp_path):
    files, labels = toy_dataset(tmp_path, n=50, missing=0.3)
    cohort = load_cohort(files, labels, "classification")
    assert len(cohort) == 50
    assert cohort.present[:, 0].all() and not cohort.present[:, 1].all()
    absent = ~cohort.present[:, 1]
    assert np.all(cohort.features["b"][absent] == 0)
    dropped = load_cohort(files, labels, "classification", drop_incomplete=True)
    assert len(dropped) == int((~absent).sum()) and dropped.present.all()


def test_features_align_with_labels_by_patient_id(tmp_path):
    files, labels = toy_dataset(tmp_path, n=30)
    ids, feats, _ = read_features(files["a"])
    cohort = load_cohort(files, labels, "classification")
    row = list(cohort.patient_ids).index(ids[7])
    assert np.array_equal(cohort.features["a"][row], feats[7])


def test_patient_in_no_modality_is_an_error_naming_the_id(tmp_path):
    files, labels = toy_dataset(tmp_path, n=20)
    df = pd.read_parquet(labels)
    df.loc[len(df)] = ["GHOST-1", 1]
    write_table(df, labels)
    with pytest.raises(InputError, match="GHOST-1"):
        load_cohort(files, labels, "classification")


def test_nan_features_name_file_and_patient(tmp_path):
    files, labels = toy_dataset(tmp_path, n=20)
    ids, feats, meta = read_features(files["a"])
    feats[3, 1] = np.nan
    write_features(files["a"], ids, feats, meta)
    with pytest.raises(InputError, match=rf"a\.parquet.*{ids[3]}"):
        load_cohort(files, labels, "classification")


def test_label_table_missing_column_and_one_class(tmp_path):
    files, labels = toy_dataset(tmp_path, n=20)
    write_table(pd.DataFrame({"patient_id": ["P0000"], "y": [1]}), labels)
    with pytest.raises(InputError, match="label"):
        load_cohort(files, labels, "classification")
    ids = [f"P{i:04d}" for i in range(20)]
    write_table(pd.DataFrame({"patient_id": ids, "label": 1}), labels)
    with pytest.raises(InputError, match="one class"):
        load_cohort(files, labels, "classification")


def test_survival_labels(tmp_path):
    files, labels = toy_dataset(tmp_path, n=40, task="survival")
    cohort = load_cohort(files, labels, "survival")
    assert cohort.time.shape == (40,) and set(np.unique(cohort.event)) <= {0, 1}
    assert np.array_equal(cohort.strata, cohort.event)


def test_scaler_uses_training_rows_only_and_selects_by_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    x[:, 2] *= 10
    train = np.zeros(100, dtype=bool)
    train[:60] = True
    x[60:] += 100.0  # a shift only in held-out rows must not move the fitted mean
    scaler = fit_scaler(x[train], np.ones(60, dtype=bool), max_features=2)
    assert 2 in scaler.columns and len(scaler.columns) == 2
    assert np.all(np.abs(scaler.mean) < 2)
    z = scaler.transform(x[:60])
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-4)


def test_modality_missing_for_a_whole_split_is_a_clear_error(tmp_path):
    from amc.data.cohort import check_modalities_in_splits

    files, labels = toy_dataset(tmp_path, n=40)
    cohort = load_cohort(files, labels, "classification")
    split = np.array(["train"] * 30 + ["val"] * 5 + ["test"] * 5, dtype=object)
    cohort.present[30:35, 1] = False  # modality b absent for the whole val split
    with pytest.raises(InputError, match="'b' is missing for every patient of the val split"):
        check_modalities_in_splits(cohort, split, "toy")


def test_unmatched_labels_can_be_dropped(tmp_path):
    files, labels = toy_dataset(tmp_path, n=20)
    df = pd.read_parquet(labels)
    df.loc[len(df)] = ["DX-ONLY", 0]
    write_table(df, labels)
    cohort = load_cohort(files, labels, "classification", drop_unmatched=True)
    assert len(cohort) == 20 and "DX-ONLY" not in set(cohort.patient_ids)
