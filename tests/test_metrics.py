"""Metrics against scikit-learn / lifelines and hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lifelines.utils import concordance_index as lifelines_ci
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from amc.errors import InputError
from amc.evaluation.metrics import (
    aggregate_seeds,
    censoring_survival,
    chance_levels,
    classification_metrics,
    concordance_index,
    concordance_index_ipcw,
    survival_metrics,
    to_jsonable,
)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_classification_binary_hand_computed():
    y = np.array([0, 0, 0, 1, 1])
    prob = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.55, 0.45]])
    m = classification_metrics(y, prob)
    # predictions 0 0 1 1 0: class 0 P=2/3 R=2/3, class 1 P=1/2 R=1/2
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # positives 0.8, 0.45 vs negatives 0.1, 0.4, 0.7: 0.8 beats 3, 0.45 beats 2 -> 5/6
    assert m["auroc"] == pytest.approx(5 / 6)


def test_classification_multiclass_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=60)
    prob = _softmax(rng.normal(size=(60, 3)) + 1.5 * np.eye(3)[y])
    m = classification_metrics(y, prob)
    pred = prob.argmax(1)
    assert m["accuracy"] == pytest.approx(float((pred == y).mean()))
    assert m["recall"] == pytest.approx(recall_score(y, pred, average="macro", zero_division=0))
    assert m["precision"] == pytest.approx(
        precision_score(y, pred, average="macro", zero_division=0)
    )
    assert m["f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    assert 0.5 < m["auroc"] <= 1.0


def test_classification_zero_division_is_zero():
    y = np.array([0, 0, 1, 1])
    prob = np.array([[0.9, 0.1]] * 4)  # never predicts class 1
    m = classification_metrics(y, prob)
    assert m["precision"] == pytest.approx(0.25)  # class 0: 2/4, class 1: 0 (no prediction)
    assert m["recall"] == pytest.approx(0.5)


def test_classification_single_class_auroc_nan(caplog):
    y = np.array([1, 1, 1])
    prob = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    with caplog.at_level("WARNING"):
        m = classification_metrics(y, prob)
    assert math.isnan(m["auroc"])
    assert "single class" in caplog.text
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_classification_bad_input():
    with pytest.raises(InputError, match="outside"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5))
    with pytest.raises(InputError, match="rows"):
        classification_metrics(np.array([0, 1, 1]), np.full((2, 2), 0.5))
    with pytest.raises(InputError, match="NaN"):
        classification_metrics(np.array([0, 1]), np.array([[np.nan, 1.0], [0.5, 0.5]]))


def _survival_data(rng: np.random.Generator, n: int, ties: bool):
    time = rng.integers(1, 12, size=n).astype(float) if ties else rng.exponential(5.0, size=n)
    event = rng.random(n) < 0.6
    risk = np.round(rng.normal(size=n) - 0.1 * time, 1 if ties else 8)
    return time, event, risk


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_harrell_equals_lifelines_with_ties(seed):
    rng = np.random.default_rng(seed)
    time, event, risk = _survival_data(rng, 80, ties=True)
    assert len(np.unique(time)) < 80 and len(np.unique(risk)) < 80  # ties really present
    assert concordance_index(time, event, risk) == lifelines_ci(time, -risk, event)


def test_harrell_hand_computed_and_no_pairs():
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([1, 1, 0, 1])
    risk = np.array([4.0, 1.0, 2.0, 2.0])
    # comparable (i event, t_i < t_j): (0,1)(0,2)(0,3)(1,2)(1,3) -> conc 3, disc 2
    assert concordance_index(time, event, risk) == pytest.approx(3 / 5)
    assert math.isnan(concordance_index(time, np.zeros(4), risk))


def test_censoring_km_hand_computed():
    # times 1..5, events 1 0 1 0 1: censorings at 2 (4 at risk) and 4 (2 at risk)
    times, g = censoring_survival(np.arange(1.0, 6.0), np.array([1, 0, 1, 0, 1]))
    np.testing.assert_allclose(times, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(g, [1.0, 0.75, 0.75, 0.375, 0.375])
    # tie: event and censoring at 2 -> the event leaves the censoring risk set first
    times, g = censoring_survival(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1, 1, 0, 1]))
    np.testing.assert_allclose(g, [1.0, 0.5, 0.5])


def test_ipcw_hand_computed():
    train_time = np.arange(1.0, 6.0)
    train_event = np.array([1, 0, 1, 0, 1])
    time = np.array([1.5, 2.5, 3.5, 4.5])
    event = np.array([1, 1, 0, 1])
    risk = np.array([4.0, 1.0, 2.0, 3.0])
    # G(1.5)=1, G(2.5)=0.75 -> w = 1, 1/0.5625; event at 4.5 has no comparable pair
    # i=0 vs j=1,2,3: 3 concordant; i=1 vs j=2,3: 0 concordant
    w1 = 1 / 0.75**2
    expected = 3.0 / (3.0 + 2 * w1)
    got = concordance_index_ipcw(train_time, train_event, time, event, risk)
    assert got == pytest.approx(expected)
    assert concordance_index(time, event, risk) == pytest.approx(3 / 5)  # differs from Harrell
    # tau truncation: only events before 2.0 count -> only i=0, all concordant
    assert concordance_index_ipcw(
        train_time, train_event, time, event, risk, tau=2.0
    ) == pytest.approx(1.0)


@pytest.mark.parametrize("ties", [False, True])
def test_ipcw_without_censoring_equals_harrell(ties):
    rng = np.random.default_rng(3)
    time, event, risk = _survival_data(rng, 70, ties=ties)
    train_time = rng.exponential(5.0, size=50)
    train_event = np.ones(50)
    got = concordance_index_ipcw(train_time, train_event, time, event, risk)
    assert got == pytest.approx(lifelines_ci(time, -risk, event), abs=1e-12)


def test_ipcw_chunked_equals_unchunked(monkeypatch):
    import amc.evaluation.metrics as metrics

    rng = np.random.default_rng(4)
    time, event, risk = _survival_data(rng, 60, ties=True)
    train_time, train_event, _ = _survival_data(rng, 60, ties=True)
    full = concordance_index_ipcw(train_time, train_event, time, event, risk)
    monkeypatch.setattr(metrics, "PAIR_CHUNK", 7)
    assert concordance_index_ipcw(train_time, train_event, time, event, risk) == pytest.approx(
        full, abs=1e-12
    )


def test_ipcw_not_computable_is_nan(caplog):
    train_time = np.array([1.0, 2.0])
    train_event = np.array([0, 0])  # G drops to 0 at t = 2
    time = np.array([3.0, 4.0])
    event = np.array([1, 1])
    with caplog.at_level("WARNING"):
        got = concordance_index_ipcw(train_time, train_event, time, event, np.array([1.0, 0.0]))
    assert math.isnan(got)
    assert "G(t) = 0" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        got = concordance_index_ipcw(
            np.array([1.0, 2.0]), np.array([1, 0]), time, np.array([0, 0]), np.array([1.0, 0.0])
        )
    assert math.isnan(got)
    assert "no observed event" in caplog.text


def test_survival_metrics_keys_and_nan_without_train():
    rng = np.random.default_rng(5)
    time, event, risk = _survival_data(rng, 40, ties=False)
    m = survival_metrics(time, event, risk)
    assert set(m) == {"c_index", "c_index_ipcw"}
    assert m["c_index"] == lifelines_ci(time, -risk, event)
    assert math.isnan(m["c_index_ipcw"])
    m2 = survival_metrics(time, event, risk, train_time=time, train_event=event)
    assert 0.0 <= m2["c_index_ipcw"] <= 1.0
    with pytest.raises(InputError, match="risk holds NaN"):
        survival_metrics(time, event, np.full(40, np.nan))


def test_aggregate_seeds_with_nan_and_json(tmp_path):
    per_seed = [
        {"accuracy": 0.5, "auroc": math.nan, "f1": math.nan},
        {"accuracy": 0.7, "auroc": 0.8, "f1": math.nan},
        {"accuracy": 0.9, "auroc": 0.6},  # f1 missing -> NaN
    ]
    agg = aggregate_seeds(per_seed)
    assert list(agg) == ["accuracy", "auroc", "f1"]
    assert agg["accuracy"]["mean"] == pytest.approx(0.7)
    assert agg["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7, 0.9]))  # ddof=0
    assert agg["auroc"]["mean"] == pytest.approx(0.7)
    assert agg["auroc"]["std"] == pytest.approx(0.1)
    assert math.isnan(agg["auroc"]["per_seed"][0]) and agg["auroc"]["per_seed"][1:] == [0.8, 0.6]
    assert math.isnan(agg["f1"]["mean"]) and math.isnan(agg["f1"]["std"])
    safe = to_jsonable(agg)
    text = json.dumps(safe, allow_nan=False)  # raises if any NaN survived
    back = json.loads(text)
    assert back["f1"] == {"mean": None, "std": None, "per_seed": [None, None, None]}
    assert back["auroc"]["per_seed"] == [None, 0.8, 0.6]
    assert to_jsonable({"a": np.float32(1.5), "b": np.array([np.inf, 2.0]), "c": (1, "x")}) == {
        "a": 1.5,
        "b": [None, 2.0],
        "c": [1, "x"],
    }
    with pytest.raises(InputError):
        aggregate_seeds([])


def test_chance_levels():
    c = chance_levels([70, 20, 10])
    assert c["auroc"] == 0.5
    assert c["f1"] == pytest.approx(1 / 3)
    assert c["accuracy"] == pytest.approx(0.7)
    # never below the majority-class predictor's macro-F1
    assert c["f1"] >= 2 * 0.7 / (1.7 * 3)
    with pytest.raises(InputError):
        chance_levels([1.0])
