"""Evaluation metrics as plain functions over numpy arrays.

Classification: accuracy and macro recall / precision / F1 of the argmax
prediction, and AUROC. Survival: Harrell's C-index (identical to lifelines'
``concordance_index``) and Uno's IPCW C-index with the censoring distribution estimated by
Kaplan-Meier on the training data. Seeds are aggregated with :func:`aggregate_seeds` and made
JSON-safe (NaN -> ``null``) with :func:`to_jsonable`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from amc.data.store import to_jsonable  # noqa: F401  (re-exported)
from amc.errors import InputError
from amc.scoring import PAIR_CHUNK, accuracy, harrell_c, macro_precision_recall_f1, roc_auc

logger = logging.getLogger(__name__)

__all__ = [
    "aggregate_seeds",
    "chance_levels",
    "censoring_survival",
    "classification_metrics",
    "concordance_index",
    "concordance_index_ipcw",
    "survival_metrics",
    "to_jsonable",
]


# --------------------------------------------------------------------------- classification
def classification_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy, macro recall / precision / F1 and AUROC of class probabilities.

    Parameters
    ----------
    y_true : np.ndarray, shape (P,), int
        True class index in ``[0, C)`` per patient.
    prob : np.ndarray, shape (P, C), float
        Predicted class probabilities (or any scores; the prediction is their argmax).

    Returns
    -------
    dict[str, float]
        ``accuracy``, ``recall``, ``precision``, ``f1``: macro averages (scikit-learn's default
        label set: the classes present in ``y_true`` or in the prediction), ``zero_division=0``.
        ``auroc``: binary (C = 2): ROC AUC of ``prob[:, 1]``; multi-class: one-vs-rest AUROC of
        ``prob[:, c]`` averaged (macro) over the classes present in ``y_true`` (equal to
        scikit-learn's ``multi_class="ovr"`` macro AUROC when every class is present).
        ``auroc`` is NaN when ``y_true`` holds a single class (AUROC is undefined then); the
        reason is logged.

    Raises
    ------
    InputError
        On mismatched shapes, fewer than two columns, non-finite probabilities or labels
        outside ``[0, C)``.
    """
    y = np.asarray(y_true)
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(
            f"prob has shape {p.shape}; expected (P, C) with C >= 2",
            hint="pass one probability column per class, also for binary tasks",
        )
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise InputError(
            f"y_true has shape {y.shape} but prob has {p.shape[0]} rows",
            hint="pass one label per patient, in the same order as prob",
        )
    if y.shape[0] == 0:
        raise InputError("classification_metrics: no patients", hint="check the split")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)):
            raise InputError("y_true holds non-integer labels", hint="pass class indices")
        y = y.astype(np.int64)
    n_classes = p.shape[1]
    if y.min() < 0 or y.max() >= n_classes:
        raise InputError(
            f"y_true holds labels outside [0, {n_classes}): min {y.min()}, max {y.max()}",
            hint="labels must index the columns of prob",
        )
    if not np.all(np.isfinite(p)):
        raise InputError("prob holds NaN or inf", hint="check the model output")

    pred = p.argmax(axis=1)
    precision, recall, f1 = macro_precision_recall_f1(y, pred)
    return {
        "accuracy": accuracy(y, pred),
        "recall": float(recall),
        "precision": float(precision),
        "f1": float(f1),
        "auroc": _auroc(y, p),
    }


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    present = np.unique(y)
    if present.size < 2:
        logger.warning(
            "AUROC undefined: y_true holds a single class (%s); reporting NaN", present.tolist()
        )
        return math.nan
    if p.shape[1] == 2:
        return roc_auc(y, p[:, 1])
    per_class = [roc_auc(y == c, p[:, c]) for c in present]
    if present.size < p.shape[1]:
        logger.warning(
            "AUROC: only classes %s of %d present in y_true; macro average over those",
            present.tolist(),
            p.shape[1],
        )
    return float(np.mean(per_class))


def chance_levels(prevalence: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Reference scores of a predictor that ignores the input.

    Parameters
    ----------
    prevalence : sequence of float, shape (C,)
        Class frequencies (normalised here; counts work too).

    Returns
    -------
    dict[str, float]
        ``auroc``: 0.5 (any input-independent score). ``f1``: 1 / C, the expected macro-F1 of a
        predictor that draws labels from the class prior (per class precision = recall =
        prevalence). It is never below the macro-F1 of always predicting the majority class
        (``2 p_max / ((1 + p_max) C)``), nor of uniform guessing, so gains over it are
        conservative. ``accuracy``: the majority-class frequency.
    """
    prev = np.asarray(prevalence, dtype=np.float64)
    if prev.ndim != 1 or prev.size < 2 or np.any(prev < 0) or prev.sum() <= 0:
        raise InputError(
            f"prevalence {prev.tolist()} is not a list of >= 2 non-negative class frequencies",
            hint="pass the training class frequencies",
        )
    prev = prev / prev.sum()
    return {"auroc": 0.5, "f1": 1.0 / prev.size, "accuracy": float(prev.max())}


# --------------------------------------------------------------------------------- survival
def _check_survival(time: Any, event: Any, risk: Any | None = None, name: str = "test"):
    t = np.asarray(time, dtype=np.float64).reshape(-1)
    e = np.asarray(event)
    if e.dtype == bool:
        e = e.astype(np.int64)
    e = np.asarray(e, dtype=np.float64).reshape(-1)
    if t.shape != e.shape:
        raise InputError(
            f"{name} time has {t.size} entries but event has {e.size}",
            hint="pass one time and one event flag per patient",
        )
    if t.size == 0:
        raise InputError(f"{name} survival data is empty", hint="check the split")
    if not np.all(np.isfinite(t)):
        raise InputError(f"{name} time holds NaN or inf", hint="drop or fix those patients")
    if np.any(t < 0):
        raise InputError(f"{name} time holds negative values", hint="times must be >= 0")
    if not np.all(np.isin(e, (0.0, 1.0))):
        raise InputError(
            f"{name} event holds values other than 0/1", hint="event = 1 observed, 0 censored"
        )
    if risk is None:
        return t, e.astype(bool), None
    r = np.asarray(risk, dtype=np.float64).reshape(-1)
    if r.shape != t.shape:
        raise InputError(
            f"{name} risk has {r.size} entries but time has {t.size}",
            hint="pass one risk score per patient",
        )
    if not np.all(np.isfinite(r)):
        raise InputError(f"{name} risk holds NaN or inf", hint="check the model output")
    return t, e.astype(bool), r


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C-index, higher ``risk`` = worse outcome (shorter time).

    Exactly ``lifelines.utils.concordance_index(time, -risk, event)``: a pair (i, j) is
    comparable when i has an observed event and ``time[i] < time[j]``, or the times are equal and
    j is censored; concordant when ``risk[i] > risk[j]``; tied risks count 1/2.

    Parameters
    ----------
    time : np.ndarray, shape (P,)
        Observed time (event or censoring).
    event : np.ndarray, shape (P,)
        1 / True where the event was observed, 0 where censored.
    risk : np.ndarray, shape (P,)
        Predicted risk.

    Returns
    -------
    float
        C in [0, 1]; NaN (logged) when there is no comparable pair (e.g. no event).
    """
    t, e, r = _check_survival(time, event, risk)
    c_index = harrell_c(t, e, r)
    if math.isnan(c_index):
        logger.warning("C-index undefined: no comparable pairs (%d events); NaN", int(e.sum()))
    return c_index


def censoring_survival(
    train_time: np.ndarray, train_event: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of the censoring survival function G(t) = P(C > t).

    Censorings are the "events" here; at tied times observed events are taken to happen before
    censorings (so they leave the censoring risk set first), as in scikit-survival.

    Parameters
    ----------
    train_time, train_event : np.ndarray, shape (P,)
        Training times and event flags (1 = event observed, 0 = censored).

    Returns
    -------
    times : np.ndarray, shape (U,)
        Sorted unique training times.
    g : np.ndarray, shape (U,)
        G at each of ``times`` (right-continuous step function, 1 before the first time).
    """
    t, e, _ = _check_survival(train_time, train_event, name="train")
    times, inverse = np.unique(t, return_inverse=True)
    n_at = np.bincount(inverse, minlength=times.size).astype(np.float64)
    d_event = np.bincount(inverse, weights=e.astype(np.float64), minlength=times.size)
    d_cens = n_at - d_event
    at_risk = np.cumsum(n_at[::-1])[::-1] - d_event
    factor = np.ones_like(at_risk)
    ok = at_risk > 0
    factor[ok] = 1.0 - d_cens[ok] / at_risk[ok]
    return times, np.cumprod(factor)


def _eval_step(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Right-continuous step function: 1 before ``times[0]``, carried forward past the end."""
    idx = np.searchsorted(times, t, side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], 1.0)


def concordance_index_ipcw(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    tau: float | None = None,
) -> float:
    """Uno's inverse-probability-of-censoring-weighted C-index.

    ``C = sum_ij w_i comp_ij (1[risk_i > risk_j] + 0.5 1[risk_i = risk_j]) / sum_ij w_i comp_ij``
    with ``w_i = G(time_i)^-2`` for observed events with ``time_i < tau`` (0 otherwise) and
    ``comp_ij`` the comparable pairs of :func:`concordance_index` (so with no censoring in the
    training data, G = 1 and this equals Harrell's C). G is the Kaplan-Meier censoring survival
    of the TRAINING data (:func:`censoring_survival`) evaluated at ``time_i`` (right-continuous,
    as scikit-survival); past the last training time it is carried forward (scikit-survival
    raises there instead). Events where G = 0 cannot be weighted: they are dropped with a
    logged warning.

    Parameters
    ----------
    train_time, train_event : np.ndarray, shape (P_train,)
        Training data, used only to estimate G.
    time, event, risk : np.ndarray, shape (P,)
        Test data and predicted risk (higher = worse).
    tau : float, optional
        Truncation time: only events before ``tau`` are counted. None = no truncation.

    Returns
    -------
    float
        The IPCW C-index, or NaN (reason logged) when there is no comparable pair with a
        positive weight.
    """
    g_times, g_values = censoring_survival(train_time, train_event)
    t, e, r = _check_survival(time, event, risk)
    rows = np.flatnonzero(e if tau is None else e & (t < tau))
    if rows.size == 0:
        logger.warning(
            "IPCW C-index undefined: no observed event%s; NaN",
            "" if tau is None else f" before tau={tau}",
        )
        return math.nan
    g = _eval_step(g_times, g_values, t[rows])
    positive = g > 0
    if not positive.all():
        logger.warning(
            "IPCW C-index: censoring survival G(t) = 0 at %d of %d event times (t >= %g); "
            "those events are dropped",
            int((~positive).sum()),
            rows.size,
            float(t[rows][~positive].min()),
        )
        rows, g = rows[positive], g[positive]
        if rows.size == 0:
            logger.warning("IPCW C-index undefined: G(t) = 0 at every event time; NaN")
            return math.nan
    weight = 1.0 / g**2
    numerator = 0.0
    denominator = 0.0
    step = max(1, PAIR_CHUNK // t.size)
    for start in range(0, rows.size, step):
        idx = rows[start : start + step]
        ti, ri, wi = t[idx, None], r[idx, None], weight[start : start + step]
        comparable = (t[None, :] > ti) | ((t[None, :] == ti) & ~e[None, :])
        score = (r[None, :] < ri) + 0.5 * (r[None, :] == ri)
        numerator += float(wi @ (comparable * score).sum(axis=1))
        denominator += float(wi @ comparable.sum(axis=1))
    if denominator <= 0:
        logger.warning("IPCW C-index undefined: no comparable pairs; NaN")
        return math.nan
    return numerator / denominator


def survival_metrics(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    train_time: np.ndarray | None = None,
    train_event: np.ndarray | None = None,
) -> dict[str, float]:
    """Harrell's and Uno's C-index.

    Parameters
    ----------
    time, event, risk : np.ndarray, shape (P,)
        Evaluation data and predicted risk (higher = worse).
    train_time, train_event : np.ndarray, shape (P_train,), optional
        Training data for the censoring distribution of the IPCW C-index.

    Returns
    -------
    dict[str, float]
        ``c_index`` and ``c_index_ipcw`` (NaN without training data or when not computable).
    """
    out = {"c_index": concordance_index(time, event, risk)}
    if train_time is None or train_event is None:
        out["c_index_ipcw"] = math.nan
    else:
        out["c_index_ipcw"] = concordance_index_ipcw(train_time, train_event, time, event, risk)
    return out


# ---------------------------------------------------------------------------- aggregation
def aggregate_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation and per-seed values of each metric.

    Parameters
    ----------
    per_seed : sequence of dict
        One ``{metric: value}`` dict per seed, in seed order. A metric missing from a seed
        counts as NaN for that seed.

    Returns
    -------
    dict[str, dict]
        ``{metric: {"mean": float, "std": float, "per_seed": [float, ...]}}``, metrics in order
        of first appearance. ``mean`` / ``std`` ignore NaN seeds (``np.nanmean``,
        ``np.nanstd``); ``std`` is the population standard deviation (``ddof=0``). A metric that
        is NaN in every seed gets NaN mean and std; use :func:`to_jsonable` before writing JSON.
    """
    if len(per_seed) == 0:
        raise InputError("aggregate_seeds: no seeds", hint="evaluate at least one seed")
    names: list[str] = []
    for row in per_seed:
        names.extend(k for k in row if k not in names)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values = np.array(
            [_to_float(row.get(name, math.nan)) for row in per_seed], dtype=np.float64
        )
        finite = values[~np.isnan(values)]
        out[name] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std(ddof=0)) if finite.size else math.nan,
            "per_seed": [float(v) for v in values],
        }
    return out


def _to_float(value: Any) -> float:
    return math.nan if value is None else float(value)
