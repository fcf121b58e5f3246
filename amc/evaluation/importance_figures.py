"""Figure in the spirit of the paper's Figure 7: is a corrupted modality given low importance?

:func:`plot_importance_by_corruption` draws, per estimator (rows) and modality (columns), the
importance of the patients whose modality was corrupted next to that of the clean patients (box
plots with the points), annotated with the AUROC of low importance for detecting the corrupted
patients. Matplotlib Agg without pyplot state; written atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from amc.data.store import atomic_path
from amc.errors import InputError
from amc.evaluation.importance import corruption_auroc

logger = logging.getLogger(__name__)

__all__ = ["plot_importance_by_corruption"]

_COLORS = {"clean": "#4C72B0", "corrupted": "#C44E52"}


def plot_importance_by_corruption(
    frame: pd.DataFrame,
    out_png: str | os.PathLike,
    modalities: Sequence[str],
    estimators: Sequence[str] = ("mean", "alignment"),
    title: str | None = None,
    corrupted_name: str = "",
    seed: int = 0,
) -> Path:
    """Box plots of importance for clean vs corrupted patients, per estimator and modality.

    Parameters
    ----------
    frame : DataFrame
        One row per (patient, estimator), e.g. pooled over seeds, with columns ``estimator``
        (str), ``corrupted`` (bool: the patient's corrupted modality was corrupted) and
        ``importance_<m>`` for every modality in ``modalities``.
    out_png : path
        PNG file to write (atomically).
    modalities : sequence of str
        Modality names, one column of panels each.
    estimators : sequence of str
        Estimators to draw, one row of panels each (e.g. the paper's ``mean`` and ``alignment``).
    title : str, optional
        Figure title.
    corrupted_name : str
        Name of the corrupted modality, prefixed to the group labels (``m0 clean``), which makes
        clear that the panels of the other modalities are split by that modality's corruption.
    seed : int
        Seed of the horizontal jitter of the points (same seed, same image).

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    InputError
        On missing columns or an estimator without rows.
    """
    _check_frame(frame, modalities, estimators)
    prefix = f"{corrupted_name} " if corrupted_name else ""
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(3.2 * len(modalities), 2.8 * len(estimators) + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(estimators), len(modalities), squeeze=False, sharey="row")
    for r, est in enumerate(estimators):
        rows = frame[frame["estimator"] == est]
        corrupted = rows["corrupted"].to_numpy(dtype=bool)
        for c, mod in enumerate(modalities):
            values = rows[f"importance_{mod}"].to_numpy(dtype=np.float64)
            _draw_panel(axes[r][c], values, corrupted, rng, prefix)
            auroc = (
                corruption_auroc(values, corrupted)
                if 0 < corrupted.sum() < corrupted.size
                else float("nan")
            )
            axes[r][c].set_title(f"{est}: {mod}  (AUROC low={auroc:.2f})", fontsize=9)
            if c == 0:
                axes[r][c].set_ylabel(f"importance ({est})")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    logger.info("wrote %s", out)
    return out


def _draw_panel(
    ax, values: np.ndarray, corrupted: np.ndarray, rng: np.random.Generator, prefix: str
) -> None:
    """One panel: box plots and jittered points of clean vs corrupted patients' importance."""
    groups = [values[~corrupted], values[corrupted]]
    box = ax.boxplot(
        groups,
        positions=[0, 1],
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black"},
    )
    for patch, key in zip(box["boxes"], ("clean", "corrupted"), strict=True):
        patch.set_facecolor(_COLORS[key])
        patch.set_alpha(0.35)
    for pos, (key, vals) in enumerate(zip(("clean", "corrupted"), groups, strict=True)):
        jitter = rng.uniform(-0.15, 0.15, size=vals.size)
        ax.scatter(pos + jitter, vals, s=4, alpha=0.5, color=_COLORS[key], linewidths=0)
    ax.set_xticks(
        [0, 1],
        [
            f"{prefix}clean\n(n={(~corrupted).sum()})",
            f"{prefix}corrupted\n(n={corrupted.sum()})",
        ],
    )
    ax.grid(axis="y", alpha=0.3)


def _check_frame(frame: pd.DataFrame, modalities: Sequence[str], estimators: Sequence[str]) -> None:
    needed = ["estimator", "corrupted", *[f"importance_{m}" for m in modalities]]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"plot_importance_by_corruption: frame lacks column(s) {missing}",
            hint="one row per (patient, estimator) with corrupted and importance_<m> columns",
        )
    absent = [e for e in estimators if not (frame["estimator"] == e).any()]
    if absent or not modalities:
        raise InputError(
            f"plot_importance_by_corruption: no rows for estimator(s) {absent}"
            if absent
            else "plot_importance_by_corruption: no modality to draw",
            hint=f"estimators in the frame: {sorted(frame['estimator'].unique().tolist())}",
        )
