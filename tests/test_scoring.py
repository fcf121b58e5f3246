"""amc.scoring against the libraries whose definitions it follows (random data with ties)."""

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test as lifelines_logrank
from lifelines.utils import concordance_index
from sklearn.metrics import auc, precision_recall_fscore_support, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from amc import scoring


@pytest.mark.parametrize("seed", range(6))
def test_macro_scores_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    classes = 2 + seed % 3
    y = rng.integers(0, classes, 40)
    pred = rng.integers(0, classes + (seed % 2), 40)  # odd seeds predict a class y lacks
    ours = scoring.macro_precision_recall_f1(y, pred)
    ref = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)[:3]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert scoring.accuracy(y, pred) == pytest.approx(np.mean(y == pred))


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_and_curve_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 50)
    score = np.round(rng.normal(size=50) + y, 1)  # rounding makes ties
    assert scoring.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    fpr, tpr = scoring.roc_curve(y, score)
    ref_fpr, ref_tpr, _ = sklearn_roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert auc(fpr, tpr) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_roc_auc_refuses_a_single_class():
    with pytest.raises(ValueError, match="one class"):
        scoring.roc_auc(np.ones(5), np.arange(5.0))


def _survival(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    time = np.round(rng.exponential(5.0, n), 0) + 1  # integer times: many ties
    event = rng.random(n) < 0.6
    risk = np.round(rng.normal(size=n) - 0.1 * time, 1)
    return time, event, risk


@pytest.mark.parametrize("seed", range(6))
def test_harrell_c_matches_lifelines(seed):
    time, event, risk = _survival(seed)
    ref = concordance_index(time, -risk, event)
    assert scoring.harrell_c(time, event, risk) == pytest.approx(ref, abs=1e-12)


def test_harrell_c_without_comparable_pairs_is_nan():
    assert math.isnan(scoring.harrell_c(np.arange(4.0), np.zeros(4), np.arange(4.0)))


@pytest.mark.parametrize("seed", range(4))
def test_kaplan_meier_matches_lifelines(seed):
    time, event, _ = _survival(seed)
    timeline, survival, lower, upper = scoring.kaplan_meier(time, event)
    kmf = KaplanMeierFitter().fit(time, event_observed=event)
    np.testing.assert_allclose(timeline, kmf.survival_function_.index.to_numpy())
    np.testing.assert_allclose(survival, kmf.survival_function_.iloc[:, 0].to_numpy(), atol=1e-12)
    ci = kmf.confidence_interval_.to_numpy()
    finite = np.isfinite(ci).all(axis=1) & (survival < 1) & (survival > 0)
    np.testing.assert_allclose(lower[finite], ci[finite, 0], atol=1e-10)
    np.testing.assert_allclose(upper[finite], ci[finite, 1], atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_logrank_matches_lifelines(seed):
    time, event, risk = _survival(seed)
    high = risk > np.median(risk)
    stat, p = scoring.logrank_test(time[high], event[high], time[~high], event[~high])
    ref = lifelines_logrank(
        time[high], time[~high], event_observed_A=event[high], event_observed_B=event[~high]
    )
    assert stat == pytest.approx(ref.test_statistic, rel=1e-10)
    assert p == pytest.approx(ref.p_value, rel=1e-8)
