"""Does the per-patient modality importance reflect modality quality?

Plain functions to score an importance estimator against ground truth known from a controlled
corruption experiment (:mod:`amc.studies.importance`):

* :func:`corruption_auroc`: AUROC of *low* importance for detecting the patients whose modality
  was corrupted (0.5 = blind, 1 = every corrupted patient ranks below every clean one).
* :func:`quality_spearman`: Spearman rank correlation of importance with a continuous quality.
* :func:`importance_estimates`: every estimator (``mean`` / ``std`` / ``max`` of the last block's
  token scores, and ``alignment``) from ONE trained checkpoint, so they are compared on the same
  model.
* :func:`importance_validity_table`: mean ± std over seeds per (estimator, attention, corruption,
  level), as Markdown and a long DataFrame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from amc.data.cohort import Cohort
from amc.errors import InputError
from amc.model.fusion import modality_importance

logger = logging.getLogger(__name__)

__all__ = [
    "ATTENTION_STATS",
    "corruption_auroc",
    "importance_estimates",
    "importance_validity_table",
    "quality_spearman",
]

#: Estimators computed from the attention map's token scores (paper eq. 2).
ATTENTION_STATS: tuple[str, str, str] = ("mean", "std", "max")

#: Keys every row given to :func:`importance_validity_table` must hold.
_GROUP = ("estimator", "attention", "corruption", "level")
_METRICS = ("corruption_auroc", "quality_spearman", "task_auroc", "task_f1")


def _vectors(a: Any, b: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b)
    if x.ndim != 1 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise InputError(
            f"{what}: importance has shape {x.shape} but the ground truth has {y.shape}",
            hint="pass one importance value and one ground-truth value per patient (P,)",
        )
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what}: importance holds NaN or inf", hint="check the model output")
    return x, y


def corruption_auroc(importance_m: np.ndarray, corrupted: np.ndarray) -> float:
    """AUROC of low importance for detecting corrupted patients.

    Parameters
    ----------
    importance_m : np.ndarray, shape (P,)
        Importance of one modality per patient.
    corrupted : np.ndarray, shape (P,), bool
        True where that modality was corrupted for the patient.

    Returns
    -------
    float
        ``roc_auc_score(corrupted, -importance_m)``: 1 when every corrupted patient has a lower
        importance than every clean one, 0.5 for an estimator blind to the corruption. NaN (with a
        warning) when all patients are corrupted or none is.
    """
    x, y = _vectors(importance_m, corrupted, "corruption_auroc")
    y = y.astype(bool)
    if y.all() or not y.any():
        logger.warning("corruption_auroc undefined: %d of %d patients corrupted", y.sum(), y.size)
        return math.nan
    return float(roc_auc_score(y, -x))


def quality_spearman(importance_m: np.ndarray, quality: np.ndarray) -> float:
    """Spearman rank correlation between importance and modality quality.

    Parameters
    ----------
    importance_m : np.ndarray, shape (P,)
        Importance of one modality per patient.
    quality : np.ndarray, shape (P,), float
        Ground-truth quality of that modality per patient (higher = better).

    Returns
    -------
    float
        Spearman's rho in [-1, 1]; NaN when either input is constant (rank correlation undefined).
    """
    x, q = _vectors(importance_m, quality, "quality_spearman")
    q = q.astype(np.float64)
    if np.ptp(x) == 0 or np.ptp(q) == 0:
        logger.warning("quality_spearman undefined: constant importance or quality")
        return math.nan
    return float(spearmanr(x, q).statistic)


@torch.inference_mode()
def importance_estimates(
    checkpoint: Mapping[str, Any],
    cohort: Cohort,
    stats: Sequence[str] = ATTENTION_STATS,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Every importance estimator of one trained checkpoint, on CPU, in eval mode.

    The forward pass is the one :func:`amc.inference.predict` runs (fusion on iff the
    checkpoint was selected at a fused epoch); the attention estimators are eq. 2 on the token
    scores of the (last) fusion step, the map that decides token replacement; ``alignment`` is
    the model's ``agreement`` output (:func:`amc.model.fusion.alignment_importance` on the encoder
    outputs).

    Parameters
    ----------
    checkpoint : dict
        What :func:`amc.training.loop.train_model` returns.
    cohort : Cohort
        Patients to score (P rows).
    stats : sequence of str
        Attention statistics to compute (subset of ``mean``, ``std``, ``max``).
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    dict[str, np.ndarray]
        ``<stat>`` (P, M) for each stat, ``alignment`` (P, M), ``model`` (P, M): the importance the
        model itself reports (``out.modality_importance``, i.e. its ``fusion.importance``), and
        ``prob`` (P, C) class probabilities (classification) or ``risk`` (P,) (survival).
    """
    from amc.data.preprocess import model_inputs
    from amc.inference import load_model
    from amc.model.heads import risk_score

    model = load_model(dict(checkpoint), torch.device("cpu"))
    inputs = model_inputs(cohort, checkpoint["scalers"])
    present_all = torch.from_numpy(cohort.present)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*stats, "alignment", "model", "out")}
    for start in range(0, len(cohort), batch_size):
        sl = slice(start, start + batch_size)
        batch = {k: v[sl] for k, v in inputs.items()}
        present = present_all[sl]
        out = model(batch, present, fuse=bool(checkpoint["fused"]))
        for stat in stats:
            parts[stat].append(modality_importance(out.token_scores, present, stat).numpy())
        parts["alignment"].append(out.agreement.float().numpy())
        parts["model"].append(out.modality_importance.float().numpy())
        parts["out"].append(out.logits.float().numpy())
    result = {k: np.concatenate(v) for k, v in parts.items() if k != "out"}
    logits = torch.from_numpy(np.concatenate(parts["out"]))
    if cohort.task == "classification":
        result["prob"] = torch.softmax(logits, -1).numpy()
    else:
        result["risk"] = risk_score(logits).numpy()
    return result


def _cell(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def importance_validity_table(
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
) -> tuple[str, pd.DataFrame]:
    """Mean ± std over seeds of the validity metrics, per estimator and corruption setting.

    Parameters
    ----------
    rows : sequence of dict or DataFrame
        One row per (seed, estimator, attention, corruption, level) with ``corruption_auroc`` and
        ``quality_spearman``; optional ``task_auroc`` / ``task_f1`` (test metrics of the model
        whose fusion is driven by that estimator) and ``seed``.

    Returns
    -------
    markdown : str
        Two pivot tables (rows: corruption, level, attention; columns: estimators), one for the
        corruption AUROC and one for the quality Spearman, cells ``mean ± std`` (population std,
        ddof=0, over seeds; NaN seeds ignored).
    DataFrame
        Long form: the group columns, ``n_seeds`` and ``<metric>_mean`` / ``<metric>_std`` for each
        metric present.
    """
    df = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    missing = [c for c in (*_GROUP, "corruption_auroc", "quality_spearman") if c not in df]
    if missing or df.empty:
        raise InputError(
            f"importance_validity_table: rows lack {missing or 'any data'}",
            hint=f"each row needs {list(_GROUP)} and corruption_auroc, quality_spearman",
        )
    metrics = [m for m in _METRICS if m in df.columns]
    estimators = list(dict.fromkeys(df["estimator"]))
    grouped = df.groupby(list(_GROUP), sort=False)
    agg = grouped[metrics].agg(lambda s: float(np.nanmean(s)) if s.notna().any() else math.nan)
    std = grouped[metrics].agg(lambda s: float(np.nanstd(s)) if s.notna().any() else math.nan)
    long = agg.add_suffix("_mean").join(std.add_suffix("_std"))
    long.insert(0, "n_seeds", grouped.size())
    long = long.reset_index()
    long = long[[*_GROUP, "n_seeds", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]]]
    settings = long[["corruption", "level", "attention"]].drop_duplicates()
    settings = settings.sort_values(["corruption", "level", "attention"], kind="stable")
    n_seeds = int(long["n_seeds"].max())
    parts = []
    for metric, title in (
        ("corruption_auroc", "AUROC of low importance for detecting the corrupted patients"),
        ("quality_spearman", "Spearman correlation of importance with modality quality"),
    ):
        header = ["corruption", "level", "attention", *estimators]
        lines = [
            f"### {title}",
            "",
            f"Test split, mean ± std over {n_seeds} seed(s) (ddof=0).",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * 3 + [":-:"] * len(estimators)) + "|",
        ]
        for corruption, level, attention in settings.itertuples(index=False):
            cells = []
            for est in estimators:
                hit = long[
                    (long["corruption"] == corruption)
                    & (long["level"] == level)
                    & (long["attention"] == attention)
                    & (long["estimator"] == est)
                ]
                cells.append(
                    "n/a"
                    if hit.empty
                    else _cell(hit[f"{metric}_mean"].iloc[0], hit[f"{metric}_std"].iloc[0])
                )
            lines.append(f"| {corruption} | {level:g} | {attention} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n", long
