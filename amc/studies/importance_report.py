"""Tables, metrics and figure of the importance validity study (amc.studies.importance)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amc.data.store import atomic_path, write_json
from amc.evaluation.importance import importance_validity_table
from amc.evaluation.importance_figures import plot_importance_by_corruption
from amc.studies.importance import (
    MODALITIES,
    MODEL,
    PAPER,
    PROPOSED,
    StudyConfig,
    task_corruptions,
    task_levels,
)
from amc.studies.importance_task import goal_check, task_markdown, task_rows, task_table

DRIVEN = "alignment (drives fusion)"


def default_fusion(runs: pd.DataFrame) -> pd.DataFrame:
    """The models of the validity side: the default replacement rule and pooling (the task
    side's other AMC variants are left to its own table)."""
    if "replace_rule" not in runs:
        return runs
    return runs[(runs["replace_rule"] == "complement") & (runs["pooling"] == "concat")]


def validity_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of the validity table: every estimator on the paper's model (``fusion.importance=
    mean``, the same model for all four), plus ``alignment`` on the model it drives, labelled
    ``alignment (drives fusion)``."""
    runs = default_fusion(runs)
    paper = runs[runs["trained_with"] == PAPER]
    driven = runs[(runs["trained_with"] == PROPOSED) & (runs["estimator"] == PROPOSED)].copy()
    driven["estimator"] = DRIVEN
    return pd.concat([paper, driven], ignore_index=True)


def task_comparison(runs: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """Task metrics (test AUROC / F1) of the model driven by ``alignment`` vs ``mean``."""
    runs = default_fusion(runs)
    driven = runs[runs["drives_fusion"]]
    lines = [
        "### Task metric when the estimator drives token replacement",
        "",
        "Test AUROC / macro F1 of the label, mean ± std over seeds (ddof=0).",
        "",
        "| corruption | level | attention | metric | fusion.importance=mean | "
        "fusion.importance=alignment | within 1 std |",
        "|---|---|---|---|:-:|:-:|:-:|",
    ]
    out: dict[str, Any] = {}
    for (kind, level, attention), group in driven.groupby(
        ["corruption", "level", "attention"], sort=True
    ):
        if set(group["estimator"]) != {PAPER, PROPOSED}:
            continue  # the alignment-driven model is trained at the highest level only
        for metric in ("task_auroc", "task_f1"):
            stats = {}
            for est in (PAPER, PROPOSED):
                values = group.loc[group["estimator"] == est, metric].to_numpy(dtype=float)
                stats[est] = (float(np.nanmean(values)), float(np.nanstd(values)))
            gap = abs(stats[PROPOSED][0] - stats[PAPER][0])
            within = bool(gap <= max(stats[PAPER][1], stats[PROPOSED][1]) + 1e-12)
            better = stats[PROPOSED][0] >= stats[PAPER][0]
            verdict = "yes" if within else ("no (higher)" if better else "no (lower)")
            lines.append(
                f"| {kind} | {level:g} | {attention} | {metric.removeprefix('task_')} | "
                f"{stats[PAPER][0]:.3f} ± {stats[PAPER][1]:.3f} | "
                f"{stats[PROPOSED][0]:.3f} ± {stats[PROPOSED][1]:.3f} | {verdict} |"
            )
            out[f"{kind}{level:g}/{attention}/{metric}"] = {
                PAPER: {"mean": stats[PAPER][0], "std": stats[PAPER][1]},
                PROPOSED: {"mean": stats[PROPOSED][0], "std": stats[PROPOSED][1]},
                "within_one_std": within,
                "alignment_not_worse": better,
            }
    return "\n".join(lines) + "\n", out


def _intro(cfg: StudyConfig, seeds: list[int], seconds: float) -> str:
    """The opening paragraphs of validity.md."""
    return (
        "# Does the modality importance reflect modality quality?\n\n"
        f"Synthetic cohort of {cfg.n_patients} patients, modalities of {list(cfg.dims)} "
        f"features (noisy linear views of a {cfg.latent}-d latent); m0 corrupted (noise / shift "
        f"/ zero) for a share of the patients; seeds {seeds}; {cfg.epochs} epochs "
        f"({cfg.warmup_epochs} warm-up), loss.instance "
        f"{cfg.instance:g}. The columns mean / "
        "std / max (the paper's estimators) and alignment are all computed from the SAME model, "
        "trained with `fusion.importance=mean`; `alignment (drives fusion)` comes from a model "
        "trained with `fusion.importance=alignment` (highest level only). AUROC 0.5 = the "
        "importance is blind to the corruption; below 0.5 = corrupted patients get MORE "
        "importance.\n\n"
        "In a pipeline's `predictions.parquet` the paper's estimator is `importance_<m>` (the s "
        "of the fusion step, which set `replaced_<m>`) and the alignment signal is "
        "`agreement_<m>` (written for every model, whatever estimator drives fusion): "
        "`importance_<m>` answers how much the model leaned on m, `agreement_<m>` whether m "
        "agrees with the patient's other modalities (the quality question of this study)."
        f"\n\nRuntime {seconds:.0f} s.\n\n"
    )


def _headline(table: pd.DataFrame, kind: str, level: float, attention: str) -> dict[str, Any]:
    """Validity numbers of every estimator at one setting (for metrics.json)."""
    head = table[
        (table["corruption"] == kind)
        & (table["level"] == level)
        & (table["attention"] == attention)
    ].set_index("estimator")
    return {
        est: {
            "corruption_auroc": float(head.loc[est, "corruption_auroc_mean"]),
            "corruption_auroc_std": float(head.loc[est, "corruption_auroc_std"]),
            "quality_spearman": float(head.loc[est, "quality_spearman_mean"]),
            "quality_spearman_std": float(head.loc[est, "quality_spearman_std"]),
        }
        for est in head.index
    }


def _task_side(
    runs: pd.DataFrame, baselines: pd.DataFrame | None, cfg: StudyConfig
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """Per-seed rows, markdown and metrics of the task-metric side."""
    rows = task_rows(
        runs,
        pd.DataFrame() if baselines is None else baselines,
        cfg.attentions[0],
        task_corruptions(cfg),
        task_levels(cfg),
    )
    table = task_table(rows)
    goal = goal_check(table, rows)
    f1 = {
        f"{r.corruption}{r.level:g}/{r.method}": {"mean": r.f1_mean, "std": r.f1_std}
        for r in table.itertuples()
    }
    return rows, task_markdown(table, goal, cfg.attentions[0]), {"f1": f1, "goal": goal}


def write_outputs(
    out_dir: Path,
    runs: pd.DataFrame,
    patients: pd.DataFrame,
    cfg: StudyConfig,
    seconds: float,
    baselines: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """validity.md / validity.csv / runs.csv / task.csv / metrics.json / figure.png under
    ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table_md, table = importance_validity_table(validity_rows(runs))
    task_md, task = task_comparison(runs)
    side_rows, side_md, side_metrics = _task_side(runs, baselines, cfg)
    seeds = sorted(int(s) for s in runs["seed"].unique())
    # Headline and figure: noise at the highest level (else the first type), first attention.
    kind = "noise" if "noise" in cfg.corruptions else cfg.corruptions[0]
    level, attention = max(cfg.levels), cfg.attentions[0]
    pick = default_fusion(patients)
    pick = pick[
        (pick["trained_with"] == PAPER)
        & (pick["corruption"] == kind)
        & (pick["level"] == level)
        & (pick["attention"] == attention)
    ]
    plot_importance_by_corruption(
        pick,
        out_dir / "figure.png",
        modalities=list(MODALITIES[: len(cfg.dims)]),
        estimators=(PAPER, PROPOSED),
        corrupted_name=MODALITIES[cfg.corrupted_modality],
        title=(
            f"m0 corrupted ({kind}) for {level:.0%} of patients: importance of clean vs corrupted "
            f"patients\n(paper's model, {attention} attention, test split, seeds {seeds})"
        ),
    )
    headline = _headline(table, kind, level, attention)
    best = max(headline, key=lambda e: np.nan_to_num(headline[e]["corruption_auroc"], nan=-1))
    metrics = {
        "setting": {"corruption": kind, "level": level, "attention": attention},
        "seeds": seeds,
        "headline": headline,
        "best_estimator": best,
        "goal_auroc_0_8_reached": bool(headline[best]["corruption_auroc"] >= 0.8),
        "task": task,
        "task_side": side_metrics,
        "runtime_s": seconds,
        "config": {**asdict(cfg), "model": MODEL},
    }
    with atomic_path(out_dir / "validity.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_dir / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_dir / "task.csv") as tmp:
        side_rows.to_csv(tmp, index=False, float_format="%.6g")
    intro = _intro(cfg, seeds, seconds)
    with atomic_path(out_dir / "validity.md") as tmp:
        tmp.write_text(intro + table_md + "\n" + task_md + "\n" + side_md)
    write_json(metrics, out_dir / "metrics.json")
    return metrics
