"""Figures of the paper rendered with matplotlib (Agg, no pyplot state), written atomically.

* :func:`plot_importance_distributions`: Figure 5 (top row), per-modality histogram of the
  modality importance s with a dashed red mean line.
* :func:`plot_replacement_distributions`: Figure 4 (first row), per-modality histogram of the
  number of replaced tokens with a dashed red mean line.
* :func:`plot_kaplan_meier`: Kaplan-Meier curves of the predicted low / high risk groups;
  :func:`plot_kaplan_meier_grid`: the same for several methods, one panel each.
* :func:`plot_donor_distributions`: Figure 4 (rows 2-3), which modality replaced which.
* :func:`plot_token_score_distributions`: Figure 5 (bottom), token scores per modality.
* :func:`plot_roc_curves`: ROC curves of several methods on one chart.

``pred`` is the predictions table of the evaluate stage; the histograms use its ``test`` rows
(all seeds pooled).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from amc.data.store import atomic_path
from amc.errors import InputError
from amc.scoring import kaplan_meier, logrank_test

logger = logging.getLogger(__name__)

__all__ = [
    "donor_column",
    "importance_plot_data",
    "plot_donor_distributions",
    "plot_roc_curves",
    "plot_token_score_distributions",
    "plot_importance_distributions",
    "plot_kaplan_meier",
    "plot_kaplan_meier_grid",
    "plot_replacement_distributions",
]


def _test_rows(pred: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in pred.columns]
    if missing:
        raise InputError(
            f"{what}: predictions table has no column(s) {missing}",
            hint="predictions.parquet needs importance_<m> and replaced_<m> per modality "
            "(docs/architecture.md, table formats); check the modality names",
        )
    if "split" in pred.columns:
        pred = pred[pred["split"] == "test"]
    if len(pred) == 0:
        raise InputError(
            f"{what}: no test rows in the predictions table",
            hint="evaluate writes every patient of every split; rerun evaluate",
        )
    return pred


def _save(fig: Figure, out_png: str | os.PathLike) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _histograms(
    pred: pd.DataFrame,
    modalities: Sequence[str],
    prefix: str,
    xlabel: str,
    title: str,
    out_png: str | os.PathLike,
    integer: bool,
) -> None:
    if not modalities:
        raise InputError(f"{title}: no modalities given", hint="pass the dataset's modalities")
    columns = [f"{prefix}{m}" for m in modalities]
    rows = _test_rows(pred, columns, title)
    fig = Figure(figsize=(3.2 * len(modalities), 2.8), layout="constrained")
    axes = fig.subplots(1, len(modalities), squeeze=False)[0]
    for ax, m, col in zip(axes, modalities, columns):
        values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        else:
            lo, hi = int(np.floor(values.min())), int(np.ceil(values.max()))
            if integer and hi - lo <= 60:
                bins = np.arange(lo, hi + 2) - 0.5  # one bar per count
            else:
                bins = min(30, max(5, int(np.sqrt(values.size))))
            ax.hist(values, bins=bins, color="tab:blue", alpha=0.75, edgecolor="white")
            mean = float(values.mean())
            ax.axvline(mean, color="red", linestyle="--", linewidth=1.5, label=f"mean {mean:.3g}")
            ax.legend(fontsize=7, loc="best")
        ax.set_title(m)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("patients")
    fig.suptitle(title, fontsize=10)
    _save(fig, out_png)
    logger.info("wrote %s (%d test rows)", out_png, len(rows))


def plot_importance_distributions(
    pred: pd.DataFrame, modalities: Sequence[str], out_png: str | os.PathLike
) -> None:
    """Figure 5 (top): histogram of ``importance_<m>`` per modality on the test split.

    Parameters
    ----------
    pred : pd.DataFrame
        Predictions table with ``split`` and ``importance_<m>`` for each modality.
    modalities : sequence of str
        Modality names, one panel each, in this order.
    out_png : path
        Output PNG, written atomically (no partial file on error).

    Raises
    ------
    InputError
        Naming a missing ``importance_<m>`` column, or when there are no test rows.
    """
    _histograms(
        pred,
        modalities,
        "importance_",
        "modality importance s",
        "Modality importance (test)",
        out_png,
        integer=False,
    )


def plot_replacement_distributions(
    pred: pd.DataFrame, modalities: Sequence[str], out_png: str | os.PathLike
) -> None:
    """Figure 4 (first row): histogram of ``replaced_<m>`` per modality on the test split.

    Parameters
    ----------
    pred : pd.DataFrame
        Predictions table with ``split`` and ``replaced_<m>`` for each modality.
    modalities : sequence of str
        Modality names, one panel each.
    out_png : path
        Output PNG, written atomically.

    Raises
    ------
    InputError
        Naming a missing ``replaced_<m>`` column, or when there are no test rows.
    """
    _histograms(
        pred,
        modalities,
        "replaced_",
        "replaced tokens",
        "Tokens replaced per modality (test)",
        out_png,
        integer=True,
    )


def importance_plot_data(pred: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """Long-format modality importance of the test rows (e.g. for DVC plots).

    Parameters
    ----------
    pred : pd.DataFrame
        Predictions table with ``patient_id``, ``split`` and ``importance_<m>``; ``seed`` is kept
        when present.
    modalities : sequence of str
        Modality names.

    Returns
    -------
    pd.DataFrame
        Columns ``patient_id``, (``seed``,) ``modality``, ``importance``; one row per test row
        and modality.
    """
    columns = [f"importance_{m}" for m in modalities]
    rows = _test_rows(pred, ["patient_id", *columns], "importance_plot_data")
    keys = ["patient_id", "seed"] if "seed" in rows.columns else ["patient_id"]
    long = rows[keys + columns].melt(id_vars=keys, var_name="modality", value_name="importance")
    long["modality"] = long["modality"].str.removeprefix("importance_")
    return long[[*keys, "modality", "importance"]].reset_index(drop=True)


def plot_kaplan_meier(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    out_png: str | os.PathLike,
    title: str,
) -> float:
    """Kaplan-Meier curves of the predicted low / high risk groups (median split of risk).

    Patients with risk above the median form the high-risk group. The legend carries the
    log-rank p-value; curves, 95% bands and test as lifelines computes them
    (:func:`amc.scoring.kaplan_meier`, :func:`amc.scoring.logrank_test`).

    Parameters
    ----------
    time, event, risk : np.ndarray, shape (P,)
        Observed times, event flags (1 = observed) and predicted risk (higher = worse).
    out_png : path
        Output PNG, written atomically.
    title : str
        Figure title.

    Returns
    -------
    float
        The log-rank p-value (NaN when one group is empty, e.g. all risks equal).
    """
    return plot_kaplan_meier_grid({title: (time, event, risk)}, out_png, "")[title]


def plot_kaplan_meier_grid(
    groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    out_png: str | os.PathLike,
    title: str,
) -> dict[str, float]:
    """:func:`plot_kaplan_meier` of several methods side by side, one panel each (same axes).

    ``groups``: panel title (e.g. a method's label) -> (time, event, risk), each shape (P,).
    Returns each panel's log-rank p-value (NaN where one risk group is empty).
    """
    if not groups:
        raise InputError("Kaplan-Meier figure: no method given")
    columns = min(len(groups), 4)
    rows = math.ceil(len(groups) / columns)
    fig = Figure(figsize=(5.0 if columns == 1 else 3.4 * columns, 3.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True)).reshape(-1)
    p_values = {
        label: _kaplan_meier_panel(ax, *arrays, label)
        for ax, (label, arrays) in zip(axes, groups.items(), strict=False)
    }
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    _save(fig, out_png)
    logger.info("wrote %s (%d panel(s))", out_png, len(groups))
    return p_values


def _kaplan_meier_panel(ax, time, event, risk, title: str) -> float:
    """Draw one :func:`plot_kaplan_meier` panel on ``ax``; return its log-rank p-value."""
    t = np.asarray(time, dtype=np.float64).reshape(-1)
    e = np.asarray(event, dtype=np.float64).reshape(-1)
    r = np.asarray(risk, dtype=np.float64).reshape(-1)
    if not (t.size == e.size == r.size) or t.size == 0:
        raise InputError(
            f"plot_kaplan_meier ({title}): time/event/risk sizes {t.size}/{e.size}/{r.size}",
            hint="pass one time, event flag and risk per patient",
        )
    for name, arr in (("time", t), ("event", e), ("risk", r)):
        if not np.all(np.isfinite(arr)):
            raise InputError(
                f"plot_kaplan_meier ({title}): {name} holds NaN or inf",
                hint="drop or fix those patients",
            )
    high = r > np.median(r)
    groups = [("low risk", ~high, "tab:blue"), ("high risk", high, "tab:red")]
    p_value = math.nan
    if high.any() and (~high).any():
        p_value = logrank_test(t[high], e[high], t[~high], e[~high])[1]
    else:
        logger.warning("plot_kaplan_meier (%s): all risks equal, one group only", title)
    for label, mask, color in groups:
        if not mask.any():
            continue
        timeline, survival, lower, upper = kaplan_meier(t[mask], e[mask])
        ax.step(
            timeline, survival, where="post", color=color, label=f"{label} (n={int(mask.sum())})"
        )
        ax.fill_between(timeline, lower, upper, step="post", color=color, alpha=0.25, lw=0)
    p_text = "n/a" if math.isnan(p_value) else f"{p_value:.3g}"
    ax.plot([], [], " ", label=f"log-rank p = {p_text}")
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("time")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=10)
    return p_value


def plot_importance_overview(mean_importance: dict[str, dict[str, float]], out_png) -> None:
    """One bar group per dataset: mean test-split importance of each of its modalities.

    Parameters
    ----------
    mean_importance
        Dataset -> {modality: mean importance}.
    """
    if not mean_importance:
        raise InputError("importance overview: no dataset given")
    fig = Figure(figsize=(max(4.0, 2.2 * len(mean_importance)), 3.0), layout="constrained")
    ax = fig.subplots()
    x = 0.0
    ticks, labels = [], []
    for dataset, values in mean_importance.items():
        for m, v in values.items():
            ax.bar(x, v, color="tab:blue", alpha=0.8)
            ax.text(x, v, m, ha="center", va="bottom", fontsize=7, rotation=90)
            x += 1.0
        ticks.append(x - (len(values) + 1) / 2)
        labels.append(dataset)
        x += 1.0
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_ylabel("mean modality importance (test)")
    ax.set_ylim(0, 1.05)
    _save(fig, out_png)


def donor_column(donor: str, target: str) -> str:
    """Predictions column: tokens of ``target`` replaced by ``donor``'s in the last fusion step."""
    return f"donated_{donor}_to_{target}"


def plot_donor_distributions(
    pred: pd.DataFrame, modalities: Sequence[str], out_png: str | os.PathLike
) -> None:
    """Figure 4 (rows 2-3): per target modality (column), one histogram per donor modality (row)
    of how many of the target's tokens the donor replaced, test split, mean as a dashed red line.
    Panel titles read "donor → target" as in the paper."""
    m = len(modalities)
    if m < 2:
        raise InputError("donor figure: needs at least two modalities")
    columns = [donor_column(d, t) for t in modalities for d in modalities if d != t]
    rows = _test_rows(pred, columns, "donor figure")
    fig = Figure(figsize=(3.0 * m, 2.4 * (m - 1)), layout="constrained")
    axes = fig.subplots(m - 1, m, squeeze=False)
    for j, target in enumerate(modalities):
        donors = [d for d in modalities if d != target]
        for i, donor in enumerate(donors):
            ax = axes[i][j]
            values = rows[donor_column(donor, target)].to_numpy(dtype=np.float64)
            hi = int(values.max()) if values.size else 0
            ax.hist(values, bins=np.arange(0, hi + 2) - 0.5, color="tab:green", alpha=0.75)
            mean = float(values.mean()) if values.size else math.nan
            ax.axvline(mean, color="red", linestyle="--", linewidth=1.5, label=f"mean {mean:.3g}")
            ax.legend(fontsize=7, loc="best")
            ax.set_title(f"{donor} → {target}", fontsize=9)
            ax.set_xlabel("tokens replaced")
    fig.suptitle("Which modality replaced which (test)", fontsize=10)
    _save(fig, out_png)


def plot_token_score_distributions(
    scores: dict[str, np.ndarray], out_png: str | os.PathLike
) -> None:
    """Figure 5 (bottom): histogram of the token scores of each modality (all tokens of the
    test patients that have it), mean as a dashed red line. ``scores``: modality -> 1-D array."""
    if not scores:
        raise InputError("token score figure: no modality given")
    fig = Figure(figsize=(3.2 * len(scores), 2.8), layout="constrained")
    axes = fig.subplots(1, len(scores), squeeze=False)[0]
    for ax, (name, values) in zip(axes, scores.items()):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        if values.size == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.hist(values, bins=30, color="tab:purple", alpha=0.75, edgecolor="white")
            mean = float(values.mean())
            ax.axvline(mean, color="red", linestyle="--", linewidth=1.5, label=f"mean {mean:.3g}")
            ax.legend(fontsize=7, loc="best")
        ax.set_title(name)
        ax.set_xlabel("token score")
    axes[0].set_ylabel("tokens")
    fig.suptitle("Token scores (test)", fontsize=10)
    _save(fig, out_png)


def plot_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | os.PathLike, title: str
) -> None:
    """ROC curves of several methods on one chart. ``curves``: label -> (y (P,) 0/1 truth,
    score (P,)); multi-class callers pass the one-vs-rest pairs stacked (micro average)."""
    from sklearn.metrics import auc, roc_curve

    if not curves:
        raise InputError("ROC figure: no method given")
    fig = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots()
    for label, (y, score) in curves.items():
        fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(score))
        ax.plot(fpr, tpr, linewidth=1.2, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(title, fontsize=10)
    _save(fig, out_png)
