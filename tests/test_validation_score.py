"""Training's model-selection score equals the metric evaluation reports (same libraries)."""

import numpy as np
import torch

from amc.data.cohort import Cohort
from amc.evaluation.metrics import classification_metrics, concordance_index
from amc.model.heads import risk_score
from amc.training.loop import validation_score


def _cohort(task: str, rng: np.random.Generator, n: int = 60) -> Cohort:
    kwargs = (
        {"labels": rng.integers(0, 3, n)}
        if task == "classification"
        else {
            "time": rng.exponential(10.0, n).round(1),  # rounded: tied times are exercised too
            "event": rng.random(n) < 0.6,
        }
    )
    return Cohort(
        patient_ids=np.array([f"P{i}" for i in range(n)], dtype=object),
        modalities=["a"],
        features={"a": np.zeros((n, 2), dtype=np.float32)},
        present=np.ones((n, 1), dtype=bool),
        task=task,
        **kwargs,
    )


def test_classification_score_is_reported_macro_f1():
    rng = np.random.default_rng(0)
    cohort = _cohort("classification", rng)
    logits = rng.normal(size=(60, 3)).astype(np.float32)
    prob = torch.softmax(torch.from_numpy(logits), -1).numpy()
    expected = classification_metrics(cohort.labels, prob)["f1"]
    assert validation_score("classification", logits, cohort) == expected
    assert 0.0 < expected < 1.0


def test_survival_score_is_reported_c_index():
    rng = np.random.default_rng(1)
    cohort = _cohort("survival", rng)
    logits = rng.normal(size=(60, 4)).astype(np.float32)
    risk = risk_score(torch.from_numpy(logits)).numpy()
    expected = concordance_index(cohort.time, cohort.event, risk)
    assert validation_score("survival", logits, cohort) == expected
    assert 0.0 < expected < 1.0
