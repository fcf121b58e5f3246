"""train@<dataset>-<method>: one model per split seed for one (dataset, method) run.

Usage: python -m stages.train <dataset> [<method>]   (method: ``amc`` (default), a name in
params ``baselines``, or a name in ``variants``)
Outputs: models/<dataset>/<method>/seed<k>.pt, reports/runs/<dataset>/<method>/train/seed<k>/
(dvclive curves). Seeds train in parallel processes on CPU (params ``train.workers``: ``auto`` =
one per core). An interrupted run resumes: per-epoch state is kept in
.cache/train/<dataset>/<method>/ (outside DVC's outputs, which DVC deletes before re-running a
stage) and reused when the settings match.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc.data.cohort import Cohort
from amc.data.store import atomic_path
from amc.errors import InputError
from amc.training.device import select_device
from amc.training.parallel import parallel_map, resolve_workers, threads_per_worker
from stages._cli import run
from stages._dataset import (
    cohort_for,
    model_dir,
    model_kwargs,
    run_dir,
    split_for_seed,
    train_settings,
)
from stages.params import AMC, load_params, run_params

log = logging.getLogger("stages.train")
CURVES = ("loss", "task", "instance", "token", "balance")


def log_curves(history: list[dict], out_dir: Path) -> None:
    """Write a seed's per-epoch curves with dvclive (after training, so resumes stay complete)."""
    from dvclive import Live

    with atomic_path(out_dir) as tmp:
        with Live(dir=str(tmp), save_dvc_exp=False, dvcyaml=None) as live:
            for record in history:
                for key in CURVES:
                    if key in record:
                        live.log_metric(f"train/{key}", record[key])
                live.log_metric("val/score", record["val_score"])
                live.next_step()


def parse_run(argv: list[str], stage: str) -> dict[str, Any]:
    """The resolved params of the (dataset, method) named on the command line."""
    if len(argv) not in (1, 2):
        raise InputError(f"usage: python -m stages.{stage} <dataset> [<method>]")
    return run_params(load_params(), argv[0], argv[1] if len(argv) == 2 else AMC)


def main(argv: list[str]) -> None:
    ds = parse_run(argv, "train")
    cohort = cohort_for(ds)
    settings = train_settings(ds)
    seeds = list(ds["split"]["seeds"])
    # Read every split before starting workers, so a missing seed fails fast and in one place.
    jobs = [(ds, cohort, split_for_seed(ds["name"], cohort, seed), seed) for seed in seeds]
    workers = resolve_workers(ds["train"]["workers"], len(jobs), select_device(settings.device))
    threads = threads_per_worker(workers, settings.num_threads)
    what = f"{ds['name']} {ds['method']}"
    log.info("%s: %d seed(s) on %d worker(s) x %d thread(s)", what, len(jobs), workers, threads)
    results = parallel_map(train_seed, jobs, workers, threads, desc=f"{what} seeds")
    for seed, (epoch, score) in zip(seeds, results, strict=True):
        log.info("%s seed %d: best epoch %d, validation score %.4f", what, seed, epoch, score)


def train_seed(job: tuple[dict[str, Any], Cohort, np.ndarray, int]) -> tuple[int, float]:
    """Train one seed, write its checkpoint and curves; return (best epoch, validation score)."""
    from amc.methods import training_config
    from amc.training.loop import train_model

    ds, cohort, split, seed = job
    cache = Path(".cache/train") / ds["name"] / ds["method"]
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = train_model(
        cohort,
        split,
        training_config(ds["family"], model_kwargs(ds), ds["options"]),
        train_settings(ds),
        seed,
        max_features=ds.get("max_features"),
        resume_path=cache / f"seed{seed}.resume.pt",
        desc=f"{ds['name']} {ds['method']} seed {seed}",
    )
    with atomic_path(model_dir(ds) / f"seed{seed}.pt") as tmp:
        torch.save(ckpt, tmp)
    log_curves(ckpt["history"], run_dir(ds) / "train" / f"seed{seed}")
    return ckpt["best_epoch"], ckpt["best_val"]


if __name__ == "__main__":
    run(main)
