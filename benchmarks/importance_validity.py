"""Does AMC's per-patient modality importance tell which modality was poor? (issue 6)

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

Outputs (under ``out_dir``): ``validity.md`` (tables), ``validity.csv`` (aggregated, long form),
``runs.csv`` (one row per seed x setting x trained model x estimator), ``metrics.json`` (the key
numbers), ``figure.png`` (Figure 7 style: importance of corrupted vs clean patients).

Usage::

    python benchmarks/importance_validity.py [--quick] [--seeds 0 1 2] [--workers 2]
        [--corruptions noise ...] [--levels 0.5 ...] [--instance 1.0]
        [--out benchmarks/results/importance]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amc.data.cohort import Cohort  # noqa: E402
from amc.data.splits import make_splits  # noqa: E402
from amc.data.store import atomic_path, write_json  # noqa: E402
from amc.evaluation.importance import (  # noqa: E402
    ATTENTION_STATS,
    corruption_auroc,
    importance_estimates,
    importance_validity_table,
    quality_spearman,
)
from amc.evaluation.importance_figures import plot_importance_by_corruption  # noqa: E402
from amc.evaluation.metrics import classification_metrics  # noqa: E402
from amc.training.loop import TrainSettings, train_model  # noqa: E402
from amc.training.parallel import parallel_map, resolve_workers  # noqa: E402

log = logging.getLogger("benchmarks.importance_validity")

CORRUPTIONS: tuple[str, ...] = ("noise", "shift", "zero")
LEVELS: tuple[float, ...] = (0.1, 0.3, 0.5)
ATTENTIONS: tuple[str, ...] = ("differential", "vanilla")
PROPOSED = "alignment"
PAPER = "mean"
MODALITIES: tuple[str, ...] = ("m0", "m1", "m2")


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the synthetic cohort, of the model and of training."""

    n_patients: int = 600
    dims: tuple[int, ...] = (64, 48, 32)
    latent: int = 8
    label_noise: float = 0.5
    shift_sd: float = 3.0
    corrupted_modality: int = 0
    corruptions: tuple[str, ...] = CORRUPTIONS
    levels: tuple[float, ...] = LEVELS
    attentions: tuple[str, ...] = ATTENTIONS
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 32
    lr: float = 3e-3
    num_threads: int = 1
    instance: float = 1.0  # loss.instance, the L_I weight recommended with alignment


#: ``--quick``: a smaller cohort, only the 50 % level, fewer epochs.
QUICK = StudyConfig(n_patients=400, levels=(0.5,), epochs=6)

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
    signal, noise = [], []
    for dim in cfg.dims:
        w = rng.normal(size=(cfg.latent, dim)) / math.sqrt(cfg.latent)
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
    )


@dataclass(frozen=True)
class Job:
    """One training: a seed's cohort under one corruption, one attention, one fusion estimator."""

    seed: int
    attention: str
    corruption: str
    level: float
    trained_with: str


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
    desc = f"s{job.seed} {job.attention[:4]} {job.corruption}{job.level:g} {job.trained_with}"
    ckpt = train_model(
        cohort,
        split,
        {**MODEL, "attention": job.attention, "importance": job.trained_with},
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
    """Paper-estimator models for every setting; alignment-driven models at the top level."""
    jobs = []
    for seed in seeds:
        for attention in cfg.attentions:
            for kind in cfg.corruptions:
                for level in cfg.levels:
                    jobs.append(Job(seed, attention, kind, level, PAPER))
                    if level >= max(cfg.levels):
                        jobs.append(Job(seed, attention, kind, level, PROPOSED))
    return jobs


DRIVEN = "alignment (drives fusion)"


def validity_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of the validity table: every estimator on the paper's model (``fusion.importance=
    mean``, the same model for all four), plus ``alignment`` on the model it drives, labelled
    ``alignment (drives fusion)``."""
    paper = runs[runs["trained_with"] == PAPER]
    driven = runs[(runs["trained_with"] == PROPOSED) & (runs["estimator"] == PROPOSED)].copy()
    driven["estimator"] = DRIVEN
    return pd.concat([paper, driven], ignore_index=True)


def task_comparison(runs: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """Task metrics (test AUROC / F1) of the model driven by ``alignment`` vs ``mean``."""
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


def write_outputs(
    out_dir: Path, runs: pd.DataFrame, patients: pd.DataFrame, cfg: StudyConfig, seconds: float
) -> dict[str, Any]:
    """validity.md / validity.csv / runs.csv / metrics.json / figure.png under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table_md, table = importance_validity_table(validity_rows(runs))
    task_md, task = task_comparison(runs)
    seeds = sorted(int(s) for s in runs["seed"].unique())
    # Headline and figure: noise at the highest level (else the first type), first attention.
    kind = "noise" if "noise" in cfg.corruptions else cfg.corruptions[0]
    level, attention = max(cfg.levels), cfg.attentions[0]
    pick = patients[
        (patients["trained_with"] == PAPER)
        & (patients["corruption"] == kind)
        & (patients["level"] == level)
        & (patients["attention"] == attention)
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
    head = table[
        (table["corruption"] == kind)
        & (table["level"] == level)
        & (table["attention"] == attention)
    ].set_index("estimator")
    headline = {
        est: {
            "corruption_auroc": float(head.loc[est, "corruption_auroc_mean"]),
            "corruption_auroc_std": float(head.loc[est, "corruption_auroc_std"]),
            "quality_spearman": float(head.loc[est, "quality_spearman_mean"]),
            "quality_spearman_std": float(head.loc[est, "quality_spearman_std"]),
        }
        for est in head.index
    }
    best = max(headline, key=lambda e: np.nan_to_num(headline[e]["corruption_auroc"], nan=-1))
    metrics = {
        "setting": {"corruption": kind, "level": level, "attention": attention},
        "seeds": seeds,
        "headline": headline,
        "best_estimator": best,
        "goal_auroc_0_8_reached": bool(headline[best]["corruption_auroc"] >= 0.8),
        "task": task,
        "runtime_s": seconds,
        "config": {**asdict(cfg), "model": MODEL},
    }
    with atomic_path(out_dir / "validity.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out_dir / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False, float_format="%.6g")
    intro = (
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
    with atomic_path(out_dir / "validity.md") as tmp:
        tmp.write_text(intro + table_md + "\n" + task_md)
    write_json(metrics, out_dir / "metrics.json")
    return metrics


def _run_job_star(args: tuple[Job, StudyConfig]) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    return run_job(*args)


def run_study(
    out_dir: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    config: StudyConfig | None = None,
    workers: int | str = "auto",
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
    cfg = config or (QUICK if quick else StudyConfig())
    start = time.perf_counter()
    jobs = make_jobs(seeds, cfg)
    workers = resolve_workers(workers, len(jobs), torch.device("cpu"))
    log.info("importance study: %d trainings on %d worker(s)", len(jobs), workers)
    results = parallel_map(
        _run_job_star,
        [(job, cfg) for job in jobs],
        workers,
        threads=cfg.num_threads,
        desc="importance study",
    )
    runs = pd.DataFrame([row for rows, _ in results for row in rows])
    patients = pd.concat([frame for _, frame in results], ignore_index=True)
    seconds = time.perf_counter() - start
    write_outputs(Path(out_dir), runs, patients, cfg, seconds)
    log.info("importance study: %d trainings in %.0f s", len(jobs), seconds)
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 50%% level")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--workers", default="auto", help="parallel trainings (auto: 1/core)")
    parser.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, default=None)
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--instance", type=float, default=None, help="L_I weight (1.0)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/importance"))
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ((0,) if args.quick else (0, 1, 2))
    cfg = QUICK if args.quick else StudyConfig()
    for key in ("corruptions", "levels", "instance"):
        value = getattr(args, key)
        if value is not None:
            cfg = replace(cfg, **{key: tuple(value) if isinstance(value, list) else value})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    runs = run_study(args.out, seeds=seeds, config=cfg, workers=args.workers)
    table = validity_rows(runs).groupby(["corruption", "level", "attention", "estimator"])
    print(table["corruption_auroc"].mean().unstack("estimator").round(3).to_string())
    print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()
