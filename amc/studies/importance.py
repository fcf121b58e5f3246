"""Does AMC's per-patient modality importance tell which modality was poor?

A controlled experiment on a feature-level synthetic cohort built in memory:

* P patients with a latent factor z (``latent`` dims), a binary label ``1[z . beta + e > 0]``
  and M = 3 vector modalities (dims 64 / 48 / 32), each a noisy linear view ``z W_m + sigma e``
  of the latent, with a per-patient noise level sigma ~ U(0.5, 1.5) (so quality varies among
  clean patients too).
* Modality m0 is corrupted for 10 / 30 / 50 % of the patients (the same random patients for
  every corruption type of a seed, nested across levels) by ``noise`` (replaced by Gaussian noise
  of the clean per-feature scale), ``shift`` (a batch effect: a constant offset of 3 clean
  standard deviations per feature, random signs) or ``zero`` (all features 0, still marked
  present).
* Ground truth per patient: ``corrupted`` and ``quality`` of m0 = the share of the observed
  vector's energy that is latent signal, ||s||^2 / (||s||^2 + ||x - s||^2), with s = 0 where the
  signal was replaced (noise, zero).

For each seed, attention (``differential`` / ``vanilla``) and corruption setting a small AMC is
trained with :func:`amc.training.loop.train_model` (the paper's ``fusion.importance=mean``) on the
seed's stratified split, and every estimator is computed from that same model: ``mean`` /
``std`` / ``max`` of the last block's token scores and ``alignment`` (agreement of the
contrastively aligned encoder embeddings). At the highest level a second model is trained with
``fusion.importance=alignment`` (the estimator then also drives token replacement): its
``alignment`` importance is reported as ``alignment (drives fusion)`` and its task metrics are
compared with the paper's model. Everything is measured on the TEST split only: AUROC of low m0
importance for detecting the corrupted patients, Spearman correlation of m0 importance with
quality, task AUROC / macro F1.

Task-metric side (:mod:`amc.studies.importance_task`): on the same cohorts and splits,
at every corruption and level of ``task_corruptions``, the test macro F1 of the AMC variants
``amc_variants`` (importance x replace_rule x pooling; first attention) beside late, early and
oracle late fusion (which drops m0 for the corrupted patients).

Outputs (under ``out_dir``): ``validity.md`` (tables), ``validity.csv`` (aggregated, long form),
``runs.csv`` (one row per seed x setting x trained model x estimator), ``task.csv`` (one row per
seed x setting x method of the task side), ``metrics.json`` (the key numbers), ``figure.png``
(Figure 7 style: importance of corrupted vs clean patients).

Run by the ``importance`` stage (``python -m stages.importance``, params ``importance_study``) and
by the script ``benchmarks/importance_validity.py`` (any seeds / corruptions / levels).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from amc.data.cohort import Cohort
from amc.data.splits import make_splits
from amc.evaluation.importance import (
    ATTENTION_STATS,
    corruption_auroc,
    importance_estimates,
    quality_spearman,
)
from amc.evaluation.metrics import classification_metrics
from amc.training.loop import TrainSettings, train_model
from amc.training.parallel import parallel_map, resolve_workers

log = logging.getLogger("amc.studies.importance")

CORRUPTIONS: tuple[str, ...] = ("noise", "shift", "zero")
LEVELS: tuple[float, ...] = (0.1, 0.3, 0.5)
ATTENTIONS: tuple[str, ...] = ("differential", "vanilla")
PROPOSED = "alignment"
PAPER = "mean"
MODALITIES: tuple[str, ...] = ("m0", "m1", "m2")
#: The corruption levels of the task-metric goal (noise at 30 and 50 % of the patients).
GOAL_LEVELS: tuple[float, ...] = (0.3, 0.5)


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the synthetic cohort, of the model and of training."""

    n_patients: int = 600
    dims: tuple[int, ...] = (64, 48, 32)
    latent: int = 8
    label_noise: float = 0.5
    # Latent dims seen by the corrupted modality only (0: every modality sees the whole latent,
    # so the other two make m0 nearly redundant and dropping it costs little; k > 0 gives m0
    # information nobody else has, so acting on its corruption can matter).
    private_latent: int = 0
    shift_sd: float = 3.0
    corrupted_modality: int = 0
    corruptions: tuple[str, ...] = CORRUPTIONS
    levels: tuple[float, ...] = LEVELS
    attentions: tuple[str, ...] = ATTENTIONS
    epochs: int = 6  # 10 before: the detection table holds at 6 (README, importance study cost)
    warmup_epochs: int = 2
    batch_size: int = 32
    lr: float = 3e-3
    num_threads: int = 1
    instance: float = 1.0  # loss.instance, the L_I weight recommended with alignment
    modality_heads: float = 1.0  # loss.modality_heads (per-modality heads' poolings only)
    modality_heads_weights: str = "uniform"  # loss.modality_heads_weights (uniform | importance)
    # Task-metric side (amc.studies.importance_task): AMC variants (importance, replace_rule,
    # pooling) and the baselines trained at the ``task_levels`` (None: all levels) of the
    # ``task_corruptions`` (None: all kinds), with the first attention only. By default the
    # goal's settings (noise at 30 and 50 %): the other settings cost 3/4 of the references'
    # trainings and decide nothing.
    amc_variants: tuple[tuple[str, str, str], ...] = ((PAPER, "complement", "concat"),)
    baselines: tuple[str, ...] = ("late", "early", "oracle")
    task_corruptions: tuple[str, ...] | None = ("noise",)
    task_levels: tuple[float, ...] | None = GOAL_LEVELS


#: ``--quick``: a smaller cohort, only the 50 % level, fewer epochs; task side on noise only.
QUICK = StudyConfig(n_patients=400, levels=(0.5,), epochs=6, task_corruptions=("noise",))


def config_from_params(study: dict[str, Any]) -> StudyConfig:
    """The study's configuration from the validated ``importance_study`` params: ``quick`` (the
    :data:`QUICK` profile, its own cohort size), else ``n_patients``, ``label_noise``,
    ``private_latent`` (the cohort) and ``task_side`` (``goal``: the task-metric table at the
    goal's settings only, ``all``: at every kind and level)."""
    if study.get("quick"):
        return QUICK
    cfg = replace(
        StudyConfig(),
        n_patients=int(study.get("n_patients", 600)),
        label_noise=float(study.get("label_noise", 0.5)),
        private_latent=int(study.get("private_latent", 0)),
    )
    if study.get("task_side", "goal") == "all":
        cfg = replace(cfg, task_corruptions=None, task_levels=None)
    return cfg


MODEL: dict[str, Any] = {
    "hidden": 32,
    "heads": 4,
    "layers": 2,
    "tokens": 8,
    "experts": 4,
    "top_k": 2,
    "encoder_layers": 1,
    "dropout": 0.1,
}


# ------------------------------------------------------------------------------------ data
def make_clean(seed: int, cfg: StudyConfig) -> dict[str, Any]:
    """Clean cohort of one seed.

    Returns
    -------
    dict
        ``ids`` (P,) str, ``labels`` (P,) int64, ``signal`` / ``noise``: lists of M arrays (P, D_m)
        float64 (observed clean features = signal + noise), ``order`` (P,) the random order in
        which patients get corrupted (the first ``level * P`` of it).
    """
    rng = np.random.default_rng([seed, 6])
    p = cfg.n_patients
    z = rng.normal(size=(p, cfg.latent))
    beta = rng.normal(size=cfg.latent)
    beta /= np.linalg.norm(beta)
    labels = (z @ beta + cfg.label_noise * rng.normal(size=p) > 0).astype(np.int64)
    if not 0 <= cfg.private_latent < cfg.latent:
        raise ValueError(f"private_latent={cfg.private_latent} must be in [0, {cfg.latent})")
    signal, noise = [], []
    for m, dim in enumerate(cfg.dims):
        w = rng.normal(size=(cfg.latent, dim)) / math.sqrt(cfg.latent)
        if m != cfg.corrupted_modality and cfg.private_latent:
            w[cfg.latent - cfg.private_latent :] = 0.0  # drawn, then zeroed: same random stream
        sigma = rng.uniform(0.5, 1.5, size=(p, 1))
        signal.append(z @ w)
        noise.append(sigma * rng.normal(size=(p, dim)))
    return {
        "ids": np.array([f"S{i:04d}" for i in range(p)], dtype=object),
        "labels": labels,
        "signal": signal,
        "noise": noise,
        "order": rng.permutation(p),
        "seed": seed,
    }


def corrupt(
    clean: dict[str, Any], kind: str, level: float, cfg: StudyConfig
) -> tuple[Cohort, np.ndarray, np.ndarray]:
    """Corrupt modality ``cfg.corrupted_modality`` for ``level`` of the patients.

    Returns
    -------
    cohort : Cohort
        All P patients, every modality present, float32 features.
    corrupted : np.ndarray, shape (P,), bool
        True where the modality was corrupted.
    quality : np.ndarray, shape (P, M), float
        Share of each observed vector's energy that is latent signal (0 where none is left).
    """
    rng = np.random.default_rng([clean["seed"], 6, CORRUPTIONS.index(kind), int(level * 1000)])
    p = len(clean["ids"])
    corrupted = np.zeros(p, dtype=bool)
    corrupted[clean["order"][: int(round(level * p))]] = True
    features: dict[str, np.ndarray] = {}
    quality = np.zeros((p, len(clean["signal"])))
    for m, (s, e) in enumerate(zip(clean["signal"], clean["noise"], strict=True)):
        x = s + e
        kept = s.copy()
        if m == cfg.corrupted_modality:
            scale = x[~corrupted].std(axis=0) if (~corrupted).any() else x.std(axis=0)
            rows = np.flatnonzero(corrupted)
            if kind == "noise":
                x[rows] = rng.normal(size=(rows.size, x.shape[1])) * scale
                kept[rows] = 0.0
            elif kind == "shift":
                offset = cfg.shift_sd * scale * rng.choice([-1.0, 1.0], size=x.shape[1])
                x[rows] += offset
            elif kind == "zero":
                x[rows] = 0.0
                kept[rows] = 0.0
            else:
                raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
        energy = (kept**2).sum(axis=1)
        residual = ((x - kept) ** 2).sum(axis=1)
        quality[:, m] = energy / np.maximum(energy + residual, 1e-12)
        features[MODALITIES[m]] = x.astype(np.float32)
    cohort = Cohort(
        patient_ids=clean["ids"],
        modalities=list(MODALITIES[: len(clean["signal"])]),
        features=features,
        present=np.ones((p, len(features)), dtype=bool),
        task="classification",
        labels=clean["labels"],
        class_names=["0", "1"],
    )
    return cohort, corrupted, quality


# ------------------------------------------------------------------------------- training
def _settings(cfg: StudyConfig) -> TrainSettings:
    return TrainSettings(
        lr=cfg.lr,
        epochs=cfg.epochs,
        warmup_epochs=cfg.warmup_epochs,
        batch_size=cfg.batch_size,
        patience=cfg.epochs,
        device="cpu",
        precision="fp32",
        num_threads=cfg.num_threads,
        instance=cfg.instance,
        modality_heads=cfg.modality_heads,
        modality_heads_weights=cfg.modality_heads_weights,
    )


@dataclass(frozen=True)
class Job:
    """One training: a seed's cohort under one corruption, one attention, one fusion estimator."""

    seed: int
    attention: str
    corruption: str
    level: float
    trained_with: str
    replace_rule: str = "complement"
    pooling: str = "concat"


def run_job(job: Job, cfg: StudyConfig) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Train one model and score every estimator on its test split.

    Returns
    -------
    rows : list of dict
        One per estimator (``mean`` / ``std`` / ``max`` from the last block's attention map,
        ``alignment`` from the encoder embeddings): validity and task metrics on the test split.
    patients : DataFrame
        Test patients x estimators: ``corrupted``, ``quality``, ``importance_<m>``.
    """
    clean = make_clean(job.seed, cfg)
    split = make_splits(clean["ids"], clean["labels"], [job.seed])["split"].to_numpy(dtype=str)
    cohort, corrupted, quality = corrupt(clean, job.corruption, job.level, cfg)
    test = np.flatnonzero(split == "test")
    test_cohort = cohort.subset(test)
    m0 = cfg.corrupted_modality
    desc = (
        f"s{job.seed} {job.attention[:4]} {job.corruption}{job.level:g} {job.trained_with} "
        f"{job.replace_rule} {job.pooling}"
    )
    model = {
        **MODEL,
        "attention": job.attention,
        "importance": job.trained_with,
        "replace_rule": job.replace_rule,
        "pooling": job.pooling,
    }
    ckpt = train_model(
        cohort,
        split,
        model,
        _settings(cfg),
        seed=job.seed,
        desc=desc,
    )
    est = importance_estimates(ckpt, test_cohort)
    if not np.allclose(est[job.trained_with], est["model"], atol=1e-5):
        raise RuntimeError(f"{desc}: recomputed importance differs from the model's own")
    task = classification_metrics(test_cohort.labels, est["prob"])
    rows, frames = [], []
    base = {
        "seed": job.seed,
        "attention": job.attention,
        "corruption": job.corruption,
        "level": job.level,
        "trained_with": job.trained_with,
        "replace_rule": job.replace_rule,
        "pooling": job.pooling,
    }
    for name in (*ATTENTION_STATS, PROPOSED):
        imp = est[name]
        rows.append(
            {
                **base,
                "estimator": name,
                "drives_fusion": name == job.trained_with,
                "corruption_auroc": corruption_auroc(imp[:, m0], corrupted[test]),
                "quality_spearman": quality_spearman(imp[:, m0], quality[test, m0]),
                "task_auroc": task["auroc"],
                "task_f1": task["f1"],
                "best_epoch": ckpt["best_epoch"],
                "fused": ckpt["fused"],
                "n_test": len(test),
                "n_test_corrupted": int(corrupted[test].sum()),
            }
        )
        frame = pd.DataFrame(
            {
                **base,
                "estimator": name,
                "patient_id": test_cohort.patient_ids.astype(str),
                "corrupted": corrupted[test],
                "quality": quality[test, m0],
            }
        )
        for m, mod in enumerate(cohort.modalities):
            frame[f"importance_{mod}"] = imp[:, m]
        frames.append(frame)
    return rows, pd.concat(frames, ignore_index=True)


def make_jobs(seeds: Sequence[int], cfg: StudyConfig) -> list[Job]:
    """Paper-estimator models for every setting; alignment-driven models at the top level (the
    default replacement rule and pooling); then the task side's AMC variants (first attention,
    ``cfg.task_corruptions`` x ``cfg.task_levels``) that are not already among them."""
    jobs = []
    for seed in seeds:
        for attention in cfg.attentions:
            for kind in cfg.corruptions:
                for level in cfg.levels:
                    jobs.append(Job(seed, attention, kind, level, PAPER))
                    if level >= max(cfg.levels):
                        jobs.append(Job(seed, attention, kind, level, PROPOSED))
    done = set(jobs)
    for seed in seeds:
        for kind in task_corruptions(cfg):
            for level in task_levels(cfg):
                for importance, rule, pooling in cfg.amc_variants:
                    job = Job(seed, cfg.attentions[0], kind, level, importance, rule, pooling)
                    if job not in done:
                        jobs.append(job)
                        done.add(job)
    return jobs


def task_corruptions(cfg: StudyConfig) -> tuple[str, ...]:
    """The corruption kinds of the task-metric side (those of ``cfg.task_corruptions`` that the
    study runs; all of them when it is None)."""
    if cfg.task_corruptions is None:
        return cfg.corruptions
    return tuple(kind for kind in cfg.corruptions if kind in cfg.task_corruptions)


def task_levels(cfg: StudyConfig) -> tuple[float, ...]:
    """The corruption levels of the task-metric side (those of ``cfg.task_levels`` that the
    study runs; all of them when it is None)."""
    if cfg.task_levels is None:
        return cfg.levels
    return tuple(level for level in cfg.levels if level in cfg.task_levels)


def _run_job_star(args: tuple[Any, StudyConfig]) -> tuple[list[dict[str, Any]], Any]:
    job, cfg = args
    if isinstance(job, Job):
        return run_job(job, cfg)
    from amc.studies.importance_task import run_baseline_job  # it imports this module

    return [run_baseline_job(job, cfg)], None


def run_study(
    out_dir: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    config: StudyConfig | None = None,
    workers: int | str = "auto",
    grid: str | None = None,
) -> pd.DataFrame:
    """Run the whole study and write its outputs (see module docstring).

    Parameters
    ----------
    out_dir : path
        Folder for validity.md / validity.csv / runs.csv / metrics.json / figure.png.
    seeds : sequence of int
        One synthetic cohort, split and training seed each.
    quick : bool
        Use :data:`QUICK` (smaller cohort, only the 50 % level, fewer epochs) unless ``config``.
    config : StudyConfig, optional
        Overrides the default (or quick) configuration.
    grid : "default" or "full", optional
        The AMC variants of the task-metric table (:data:`amc.studies.importance_task.GRIDS`);
        None keeps the configuration's ``amc_variants``.
    workers : int or "auto"
        Trainings run in parallel (processes of ``config.num_threads`` torch threads each);
        1 runs them in this process, ``"auto"`` one per CPU core. Results do not depend on
        it (every training is seeded).

    Returns
    -------
    DataFrame
        One row per (seed, attention, corruption, level, trained model, estimator) with
        ``corruption_auroc``, ``quality_spearman``, ``task_auroc``, ``task_f1``.
    """
    from amc.studies.importance_report import write_outputs  # it imports this module's constants
    from amc.studies.importance_task import GRIDS, make_baseline_jobs, share_oracle

    cfg = config or (QUICK if quick else StudyConfig())
    if grid is not None:
        if grid not in GRIDS:
            raise ValueError(f"unknown grid {grid!r}; expected one of {sorted(GRIDS)}")
        cfg = replace(cfg, amc_variants=GRIDS[grid])
    start = time.perf_counter()
    # Longest first: the AMC trainings, then the (cheaper) baselines fill the workers' tails.
    jobs: list[Any] = [*make_jobs(seeds, cfg), *make_baseline_jobs(seeds, cfg)]
    workers = resolve_workers(workers, len(jobs), torch.device("cpu"))
    log.info("importance study: %d trainings on %d worker(s)", len(jobs), workers)
    results = parallel_map(
        _run_job_star,
        [(job, cfg) for job in jobs],
        workers,
        threads=cfg.num_threads,
        desc="importance study",
    )
    amc_results = [(rows, frame) for rows, frame in results if frame is not None]
    runs = pd.DataFrame([row for rows, _ in amc_results for row in rows])
    patients = pd.concat([frame for _, frame in amc_results], ignore_index=True)
    baselines = pd.DataFrame([row for rows, frame in results if frame is None for row in rows])
    baselines = share_oracle(baselines, task_corruptions(cfg))
    seconds = time.perf_counter() - start
    write_outputs(Path(out_dir), runs, patients, cfg, seconds, baselines)
    log.info("importance study: %d trainings in %.0f s", len(jobs), seconds)
    return runs
