"""train@<dataset>: one AMC model per split seed.

Usage: python -m stages.train <dataset> [--splits data/splits/<dataset>.parquet]
    [--models models/<dataset>] [--curves reports/<dataset>/train]
Outputs: <models>/seed<k>.pt and <curves>/seed<k>/ (dvclive curves).
Seeds train in parallel processes on CPU (params ``train.workers``: ``auto`` = one per core).
An interrupted run resumes: per-epoch state is kept in .cache/train/<dataset>/ (outside DVC's
outputs, which DVC deletes before re-running a stage) and reused when the settings match.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from amc.data.cohort import Cohort
from amc.data.store import atomic_path
from amc.runtime import select_device
from amc.training.checkpoint import save_checkpoint
from amc.training.parallel import parallel_map, resolve_workers, threads_per_worker
from stages._cli import run, stage_parser
from stages._dataset import cohort_for, model_kwargs, split_for_seed, train_settings
from stages.params import dataset_params, load_params

log = logging.getLogger("stages.train")


def log_curves(history: list[dict], out_dir: Path) -> None:
    """Write a seed's per-epoch curves with dvclive (after training, so resumes stay complete)."""
    from dvclive import Live

    with atomic_path(out_dir) as tmp:
        with Live(dir=str(tmp), save_dvc_exp=False, dvcyaml=None) as live:
            for record in history:
                for key in ("loss", "task", "instance", "token", "balance"):
                    live.log_metric(f"train/{key}", record[key])
                live.log_metric("val/score", record["val_score"])
                live.next_step()


def main(argv: list[str]) -> None:
    parser = stage_parser("train", __doc__)
    parser.add_argument("dataset", help="a datasets.<name> item of params.yaml")
    parser.add_argument("--splits", type=Path, help="the split stage's Parquet file")
    parser.add_argument("--models", type=Path, help="folder of the seed<k>.pt checkpoints")
    parser.add_argument("--curves", type=Path, help="folder of the per-seed training curves")
    args = parser.parse_args(argv)
    name = args.dataset
    outputs = {
        "models": args.models or Path("models") / name,
        "curves": args.curves or Path("reports") / name / "train",
    }
    ds = dataset_params(load_params(), name)
    cohort = cohort_for(ds)
    settings = train_settings(ds)
    seeds = list(ds["split"]["seeds"])
    # Read every split before starting workers, so a missing seed fails fast and in one place.
    jobs = [
        (name, ds, cohort, split_for_seed(name, cohort, seed, args.splits), seed, outputs)
        for seed in seeds
    ]
    workers = resolve_workers(ds["train"]["workers"], len(jobs), select_device(settings.device))
    threads = threads_per_worker(workers, settings.num_threads)
    log.info("%s: %d seed(s) on %d worker(s) x %d thread(s)", name, len(jobs), workers, threads)
    results = parallel_map(train_seed, jobs, workers, threads, desc=f"{name} seeds")
    for seed, (epoch, score) in zip(seeds, results, strict=True):
        log.info("%s seed %d: best epoch %d, validation score %.4f", name, seed, epoch, score)


def train_seed(
    job: tuple[str, dict[str, Any], Cohort, np.ndarray, int, dict[str, Path]],
) -> tuple[int, float]:
    """Train one seed, write its checkpoint and curves; return (best epoch, validation score)."""
    from amc.training.loop import train_model

    name, ds, cohort, split, seed, outputs = job
    cache = Path(".cache/train") / name
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = train_model(
        cohort,
        split,
        model_kwargs(ds),
        train_settings(ds),
        seed,
        max_features=ds.get("max_features"),
        resume_path=cache / f"seed{seed}.resume.pt",
        desc=f"{name} seed {seed}",
    )
    save_checkpoint(ckpt, outputs["models"] / f"seed{seed}.pt")  # same weights, same bytes
    log_curves(ckpt["history"], outputs["curves"] / f"seed{seed}")
    return ckpt["best_epoch"], ckpt["best_val"]


if __name__ == "__main__":
    run(main)
