"""Task-metric side of the importance study: does fusion act on what it detects?

On the same cohorts, splits and corruptions as :mod:`amc.studies.importance`, the test macro F1
of AMC variants (``fusion.importance`` x ``fusion.replace_rule`` x ``fusion.pooling``) is set
beside three references trained with the same loop (:func:`amc.training.loop.train_model`), the
same model sizes and the same settings:

* ``late``: late fusion (``amc.baselines.build_model("late")``: the mean of per-modality
  predictions over the modalities a patient has),
* ``early``: early fusion (``build_model("early")``: concatenated tokens, an MLP),
* ``oracle``: late fusion that knows which patients are corrupted and drops the corrupted
  modality for them (marked absent in training, validation and test), i.e. what fusion that
  acts perfectly on a perfect detector could reach.

The goal: at 30 % and 50 % noise the best AMC variant beats late fusion by more than
the seeds' std and closes at least half of the gap from late fusion to the oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch

from amc.config import FusionParams
from amc.data.cohort import Cohort
from amc.data.splits import make_splits
from amc.evaluation.comparison import paired_difference
from amc.evaluation.metrics import classification_metrics
from amc.inference import predict
from amc.studies.importance import (
    MODEL,
    PAPER,
    StudyConfig,
    _settings,
    corrupt,
    make_clean,
    task_corruptions,
    task_levels,
)
from amc.training.loop import train_model
from amc.training.parallel import parallel_map, resolve_workers

BASELINES: tuple[str, ...] = ("late", "early", "oracle")
BASELINE_LABELS = {
    "late": "late fusion",
    "early": "early fusion",
    "oracle": "oracle late fusion (drops corrupted m0)",
}
#: Every AMC variant of the full grid: (fusion.importance, fusion.replace_rule, fusion.pooling).
FULL_GRID: tuple[tuple[str, str, str], ...] = tuple(
    (importance, rule, pooling)
    for importance in (PAPER, "alignment")
    for rule in ("complement", "paper", "deficit")
    for pooling in ("concat", "importance")
)
#: The default run: the paper's estimator with the default rule and pooling.
DEFAULT_GRID: tuple[tuple[str, str, str], ...] = ((PAPER, "complement", "concat"),)
#: The default and the candidate that meets the goal's paired reading on the goal cohort
#: (README: "A cohort where the goal is measurable"): alignment, deficit rule, importance pooling.
CANDIDATE_GRID: tuple[tuple[str, str, str], ...] = (
    *DEFAULT_GRID,
    ("alignment", "deficit", "importance"),
)
GRIDS = {"default": DEFAULT_GRID, "candidate": CANDIDATE_GRID, "full": FULL_GRID}
#: Every value of each switch a variant may take: the params schema's choices of
#: fusion.importance, fusion.replace_rule and fusion.pooling (one list, so a new choice is here).
VARIANT_CHOICES: tuple[tuple[str, ...], ...] = tuple(
    next(f for f in fields(FusionParams) if f.name == name).metadata["rule"].choices
    for name in ("importance", "replace_rule", "pooling")
)


def is_variant(variant: Sequence[str]) -> bool:
    """Whether ``variant`` is a valid (fusion.importance, fusion.replace_rule, fusion.pooling)."""
    return len(variant) == 3 and all(
        value in choices for value, choices in zip(variant, VARIANT_CHOICES, strict=True)
    )


@dataclass(frozen=True)
class BaselineJob:
    """One reference training: a seed's cohort under one corruption, one baseline."""

    seed: int
    corruption: str
    level: float
    method: str  # late | early | oracle


def make_baseline_jobs(seeds: Sequence[int], cfg: StudyConfig) -> list[BaselineJob]:
    """Every baseline at every task-side corruption and level of every seed; the oracle only at
    the first corruption kind: it drops the corrupted modality, so its cohort (and training) is
    the same for every kind (:func:`share_oracle` copies its rows to the others)."""
    unknown = set(cfg.baselines) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; expected some of {BASELINES}")
    kinds = task_corruptions(cfg)
    return [
        BaselineJob(seed, kind, level, method)
        for seed in seeds
        for kind in kinds
        for level in task_levels(cfg)
        for method in cfg.baselines
        if method != "oracle" or kind == kinds[0]
    ]


def share_oracle(rows: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    """Baseline rows with the oracle's rows (trained at ``kinds[0]`` only, see
    :func:`make_baseline_jobs`) repeated for every other corruption kind."""
    if not len(rows) or len(kinds) < 2:
        return rows
    oracle = rows[(rows["method"] == "oracle") & (rows["corruption"] == kinds[0])]
    copies = [oracle.assign(corruption=kind) for kind in kinds[1:]]
    return pd.concat([rows, *copies], ignore_index=True)


def baseline_headroom(
    seeds: Sequence[int], cfg: StudyConfig, workers: int | str = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train only the baselines (``cfg.baselines``, late and oracle at least) at the task side's
    settings and measure the room the cohort leaves: oracle − late, paired over seeds.

    A cheap way to choose a cohort (``StudyConfig`` sizes, label noise, private latent) on
    which the task-metric goal can be shown at all, before training any AMC variant.

    Returns
    -------
    rows : DataFrame
        One row per (seed, corruption, level, method) with ``task_f1`` / ``task_auroc``.
    room : DataFrame
        One row per (corruption, level): ``late_f1`` / ``oracle_f1`` (mean, std over seeds),
        ``room_mean`` / ``room_std`` (oracle − late, paired over seeds, std ddof=0 as in
        :func:`paired_difference`), ``room_wins`` and ``room_ratio`` = mean / std.
    """
    if not {"late", "oracle"} <= set(cfg.baselines):
        raise ValueError(f"baseline_headroom needs late and oracle; got {cfg.baselines}")
    jobs = make_baseline_jobs(seeds, cfg)
    workers = resolve_workers(workers, len(jobs), torch.device("cpu"))
    results = parallel_map(
        _run_baseline_star,
        [(job, cfg) for job in jobs],
        workers,
        threads=cfg.num_threads,
        desc="baseline headroom",
    )
    rows = share_oracle(pd.DataFrame(results), task_corruptions(cfg))
    room = []
    for (kind, level), here in rows.groupby(["corruption", "level"], sort=True):
        f1 = {m: _per_seed_f1(here, m) for m in ("late", "oracle")}
        diff = paired_difference(f1["oracle"], f1["late"])
        late, oracle = np.array(list(f1["late"].values())), np.array(list(f1["oracle"].values()))
        room.append(
            {
                "corruption": kind,
                "level": level,
                "late_f1": float(late.mean()),
                "late_f1_std": float(late.std()),
                "oracle_f1": float(oracle.mean()),
                "oracle_f1_std": float(oracle.std()),
                "room_mean": diff["mean"],
                "room_std": diff["std"],
                "room_wins": f"{diff['wins']}/{diff['n_seeds']}",
                "room_ratio": diff["mean"] / diff["std"] if diff["std"] else float("inf"),
            }
        )
    return rows, pd.DataFrame(room)


def _run_baseline_star(args: tuple[BaselineJob, StudyConfig]) -> dict[str, Any]:
    job, cfg = args
    return run_baseline_job(job, cfg)


def drop_modality(cohort: Cohort, rows: np.ndarray, modality: int) -> Cohort:
    """``cohort`` with modality ``modality`` marked absent (features zeroed) for ``rows`` (bool)."""
    name = cohort.modalities[modality]
    present = cohort.present.copy()
    present[rows, modality] = False
    values = cohort.features[name].copy()
    values[rows] = 0.0
    return Cohort(
        patient_ids=cohort.patient_ids,
        modalities=cohort.modalities,
        features={**cohort.features, name: values},
        present=present,
        task=cohort.task,
        labels=cohort.labels,
        class_names=cohort.class_names,
    )


def run_baseline_job(job: BaselineJob, cfg: StudyConfig) -> dict[str, Any]:
    """Train one baseline on the job's cohort and score it on the test split."""
    clean = make_clean(job.seed, cfg)
    split = make_splits(clean["ids"], clean["labels"], [job.seed])["split"].to_numpy(dtype=str)
    cohort, corrupted, _ = corrupt(clean, job.corruption, job.level, cfg)
    task = fit_and_score(
        cohort,
        split,
        job.method,
        corrupted,
        cfg,
        job.seed,
        desc=f"s{job.seed} {job.corruption}{job.level:g} {job.method}",
    )
    return {
        "seed": job.seed,
        "corruption": job.corruption,
        "level": job.level,
        "method": job.method,
        **task,
    }


def fit_and_score(
    cohort: Cohort,
    split: np.ndarray,
    method: str,
    corrupted: np.ndarray,
    cfg: StudyConfig,
    seed: int,
    desc: str = "baseline",
) -> dict[str, Any]:
    """Train baseline ``method`` (late | early | oracle) with the study's model sizes and
    settings on ``split == "train"`` (selection on "val") and score it on "test".

    ``corrupted`` (P,) bool: the patients whose modality ``cfg.corrupted_modality`` the oracle
    drops (used by ``oracle`` only). Returns ``task_f1``, ``task_auroc``, ``best_epoch``.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; expected one of {BASELINES}")
    if method == "oracle":
        cohort = drop_modality(cohort, corrupted, cfg.corrupted_modality)
    ckpt = train_model(
        cohort,
        split,
        {
            **MODEL,
            "attention": cfg.attentions[0],
            "method": "late" if method == "oracle" else method,
        },
        _settings(cfg),
        seed=seed,
        desc=desc,
    )
    test_cohort = cohort.subset(np.flatnonzero(split == "test"))
    prob = predict(ckpt, test_cohort, device="cpu", precision="fp32")["prob"]
    task = classification_metrics(test_cohort.labels, prob)
    return {"task_f1": task["f1"], "task_auroc": task["auroc"], "best_epoch": ckpt["best_epoch"]}


def amc_label(importance: str, rule: str, pooling: str) -> str:
    """Row name of an AMC variant: its three fusion switches."""
    return f"AMC {importance} · {rule} · {pooling}"


def task_rows(
    runs: pd.DataFrame,
    baselines: pd.DataFrame,
    attention: str,
    corruptions: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per (seed, corruption, level, method) with ``task_f1`` / ``task_auroc``: the AMC
    models of ``attention`` (one row per model, labelled by :func:`amc_label`) and the
    baselines (labelled by :data:`BASELINE_LABELS`), for the ``corruptions`` and ``levels`` of
    the task side (default: all)."""
    if corruptions is not None:
        runs = runs[runs["corruption"].isin(list(corruptions))]
    if levels is not None:
        runs = runs[runs["level"].isin(list(levels))]
    amc = runs[(runs["attention"] == attention) & (runs["estimator"] == runs["trained_with"])]
    amc = amc.assign(
        method=[
            amc_label(i, r, p)
            for i, r, p in zip(amc["trained_with"], amc["replace_rule"], amc["pooling"])
        ],
        family="amc",
    )
    keep = ["seed", "corruption", "level", "method", "family", "task_f1", "task_auroc"]
    frames = [amc[keep]]
    if len(baselines):
        base = baselines.assign(
            method=baselines["method"].map(BASELINE_LABELS), family=baselines["method"]
        )
        frames.append(base[keep])
    return pd.concat(frames, ignore_index=True)


def task_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean / std (ddof=0) of test F1 and AUROC over seeds per (corruption, level, method)."""
    grouped = rows.groupby(["corruption", "level", "family", "method"], sort=True)
    table = grouped.agg(
        f1_mean=("task_f1", "mean"),
        f1_std=("task_f1", lambda v: float(np.std(v))),
        auroc_mean=("task_auroc", "mean"),
        auroc_std=("task_auroc", lambda v: float(np.std(v))),
        n_seeds=("seed", "nunique"),
    )
    return table.reset_index()


def goal_check(table: pd.DataFrame, rows: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """The task-metric goal per (corruption, level) with the three references: the best AMC
    variant (by mean F1) beats late fusion by more than the seeds' std, and closes at least half
    of the gap from late fusion to the oracle (F1 >= late + (oracle - late) / 2).

    "More than the seeds' std" is read two ways, both reported: ``beats_late_beyond_std`` (the
    stricter one) takes the larger of the two marginal stds (AMC's, late fusion's);
    ``beats_late_beyond_paired_std`` takes the std of the per-seed differences AMC - late on the
    same seeds (same splits), as the paired comparisons of the pipeline's report do
    (:func:`amc.evaluation.comparison.paired_difference`); it needs the per-seed ``rows`` of
    :func:`task_rows` (without them the paired fields are None). ``oracle_*``: the same paired
    reading for the oracle, i.e. whether the cohort leaves any room to beat late fusion.
    """
    out: dict[str, dict[str, Any]] = {}
    for (kind, level), group in table.groupby(["corruption", "level"], sort=True):
        by_family = {f: g for f, g in group.groupby("family")}
        if not {"amc", "late", "oracle"} <= set(by_family):
            continue
        amc = by_family["amc"].sort_values("f1_mean", ascending=False).iloc[0]
        late = by_family["late"].iloc[0]
        oracle = by_family["oracle"].iloc[0]
        margin = float(amc["f1_mean"] - late["f1_mean"])
        half_way = float(late["f1_mean"] + (oracle["f1_mean"] - late["f1_mean"]) / 2)
        beats = margin > max(float(amc["f1_std"]), float(late["f1_std"]))
        paired = headroom = None
        if rows is not None:
            here = rows[(rows["corruption"] == kind) & (rows["level"] == level)]
            late_f1 = _per_seed_f1(here, str(late["method"]))
            paired = paired_difference(_per_seed_f1(here, str(amc["method"])), late_f1)
            headroom = paired_difference(_per_seed_f1(here, str(oracle["method"])), late_f1)
        out[f"{kind}{level:g}"] = {
            "best_amc": str(amc["method"]),
            "best_amc_f1": float(amc["f1_mean"]),
            "best_amc_f1_std": float(amc["f1_std"]),
            "late_f1": float(late["f1_mean"]),
            "late_f1_std": float(late["f1_std"]),
            "oracle_f1": float(oracle["f1_mean"]),
            "margin_over_late": margin,
            "beats_late_beyond_std": bool(beats),
            "paired_diff_mean": None if paired is None else paired["mean"],
            "paired_diff_std": None if paired is None else paired["std"],
            "paired_wins": None if paired is None else f"{paired['wins']}/{paired['n_seeds']}",
            "beats_late_beyond_paired_std": None
            if paired is None
            else bool(paired["mean"] > paired["std"]),
            "half_way_to_oracle": bool(amc["f1_mean"] >= half_way),
            # Headroom: if even the oracle (perfect detection, perfect action) does not beat
            # late fusion beyond the paired std, no AMC variant can show the goal here.
            "oracle_paired_diff_mean": None if headroom is None else headroom["mean"],
            "oracle_paired_diff_std": None if headroom is None else headroom["std"],
            "oracle_beats_late_beyond_paired_std": None
            if headroom is None
            else bool(headroom["mean"] > headroom["std"]),
        }
    return out


def _per_seed_f1(rows: pd.DataFrame, method: str) -> dict[int, float]:
    """Seed -> test F1 of one method in the per-seed rows of :func:`task_rows`."""
    mine = rows[rows["method"] == method]
    return {int(s): float(f) for s, f in zip(mine["seed"], mine["task_f1"])}


def task_markdown(table: pd.DataFrame, goal: dict[str, dict[str, Any]], attention: str) -> str:
    """The task-metric table (methods x settings, F1 mean ± std) and the goal check."""
    table = table.assign(
        setting=[f"{k} {lv:.0%}" for k, lv in zip(table["corruption"], table["level"])]
    )
    settings = list(dict.fromkeys(table.sort_values(["corruption", "level"])["setting"]))
    order = {"amc": 0, "late": 1, "early": 2, "oracle": 3}
    methods = (
        table[["family", "method"]]
        .drop_duplicates()
        .sort_values("family", key=lambda f: f.map(order), kind="stable")["method"]
    )
    cells = table.set_index(["method", "setting"])
    lines = [
        "### Task metric: AMC variants vs late, early and oracle fusion",
        "",
        f"Test macro F1, mean ± std over seeds (ddof=0); AMC rows: `fusion.importance · "
        f"fusion.replace_rule · fusion.pooling`, {attention} attention; every model trained "
        "with the same loop, sizes and settings on the same splits. The oracle is late fusion "
        "with m0 marked absent for the corrupted patients.",
        "",
        "| method | " + " | ".join(settings) + " |",
        "|---|" + ":-:|" * len(settings),
    ]
    for method in methods:
        row = []
        for setting in settings:
            if (method, setting) in cells.index:
                cell = cells.loc[(method, setting)]
                row.append(f"{cell['f1_mean']:.3f} ± {cell['f1_std']:.3f}")
            else:
                row.append("n/a")
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    if goal:
        lines += [
            "",
            "Goal: the best AMC variant beats late fusion by more than the seeds' std and "
            "reaches at least half-way from late fusion to the oracle. Two readings of the std: "
            "*marginal* (stricter): the margin exceeds the larger of the two methods' stds over "
            "seeds; *paired*: the mean per-seed difference AMC − late (same seeds, same splits) "
            "exceeds the std of those differences, as in the pipeline's paired comparisons. "
            "*Oracle − late, paired*: the room the cohort leaves; where the oracle itself is not "
            "beyond its paired std, no fusion method can show the goal on this cohort.",
            "",
            "| setting | best AMC | F1 | late | oracle | AMC − late, paired | seeds AMC wins | "
            "beats late > marginal std | beats late > paired std | half-way to oracle | "
            "oracle − late, paired |",
            "|---|---|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|",
        ]
        for key, g in goal.items():
            paired = _pm(g, "paired_diff")
            lines.append(
                f"| {key} | {g['best_amc']} | {g['best_amc_f1']:.3f} ± {g['best_amc_f1_std']:.3f} "
                f"| {g['late_f1']:.3f} ± {g['late_f1_std']:.3f} | {g['oracle_f1']:.3f} | "
                f"{paired} | {g['paired_wins'] or 'n/a'} | "
                f"{_yes(g['beats_late_beyond_std'])} | {_yes(g['beats_late_beyond_paired_std'])} | "
                f"{_yes(g['half_way_to_oracle'])} | {_pm(g, 'oracle_paired_diff')} |"
            )
    return "\n".join(lines) + "\n"


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _pm(goal: dict[str, Any], prefix: str) -> str:
    """``+mean ± std`` of a paired difference in a goal entry, or n/a."""
    mean, std = goal.get(f"{prefix}_mean"), goal.get(f"{prefix}_std")
    return "n/a" if mean is None else f"{mean:+.3f} ± {std:.3f}"
