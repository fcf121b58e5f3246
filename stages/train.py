"""train@<dataset>-<method>: one model per split seed for one (dataset, method) run.

Usage: python -m stages.train <dataset> [<method>] [--config data/configs/<dataset>/<method>.json]
    [--splits data/splits/<dataset>.parquet]
    [--models models/<dataset>/<method>] [--out reports/runs/<dataset>/<method>]
(method: ``amc`` (default), a name in params ``baselines``, or a name in ``variants``)
Outputs: <models>/seed<k>.pt (each with its per-epoch history, which stages.evaluate writes
to <out>/plots/curves.tsv).
Seeds train in parallel processes on CPU (params ``train.workers``: ``auto`` = one per core).
An interrupted run resumes: per-epoch state is kept in
.cache/train/<dataset>/<method>/ (outside DVC's outputs, which DVC deletes before re-running a
stage) and reused when the settings match.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from amc.data.cohort import Cohort
from amc.errors import InputError
from amc.runtime import select_device
from amc.training.checkpoint import save_checkpoint
from amc.training.parallel import parallel_map, resolve_workers, threads_per_worker
from stages._cli import run, stage_parser
from stages._dataset import (
    cohort_for,
    metrics_file,
    model_dir,
    model_kwargs,
    run_dir,
    split_for_seed,
    train_settings,
)
from stages.params import AMC, CODE_KEY, load_params, read_configure_file, run_params

log = logging.getLogger("stages.train")


def run_parser(stage: str, doc: str | None) -> argparse.ArgumentParser:
    """The arguments shared by the stages of one (dataset, method) run: train, evaluate, run."""
    parser = stage_parser(stage, doc)
    parser.add_argument("dataset", help="a datasets.<name> item of params.yaml")
    parser.add_argument(
        "method", nargs="?", default=AMC, help="amc (default), a baselines or a variants name"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="the run's settings written by the configure stage (default: resolve params.yaml)",
    )
    parser.add_argument("--splits", type=Path, help="the split stage's Parquet file")
    parser.add_argument("--models", type=Path, help="folder of the seed<k>.pt checkpoints")
    parser.add_argument("--out", type=Path, help="the run's report folder")
    parser.add_argument("--metrics", type=Path, help="the run's test-metrics JSON file")
    return parser


def parse_run(argv: list[str], stage: str, doc: str | None) -> tuple[dict[str, Any], Any]:
    """The resolved params of the (dataset, method) named on the command line, and its paths
    (``args.models`` / ``args.out`` / ``args.metrics`` default to models/<dataset>/<method>,
    reports/runs/<dataset>/<method> and reports/metrics/<dataset>/<method>.json)."""
    args = run_parser(stage, doc).parse_args(argv)
    if args.config is None:
        ds = run_params(load_params(), args.dataset, args.method)
    else:
        ds = read_run_config(args.config, args.dataset, args.method)
    args.models = args.models or model_dir(ds)
    args.out = args.out or run_dir(ds)
    args.metrics = args.metrics or metrics_file(ds["name"], ds["method"])
    return ds, args


def read_run_config(path: Path, dataset: str, method: str) -> dict[str, Any]:
    """A run's settings from its configure-stage file, checked to be that run's."""
    ds = read_configure_file(path)
    if not isinstance(ds, dict) or (ds.get("name"), ds.get("method")) != (dataset, method):
        found = (ds.get("name"), ds.get("method")) if isinstance(ds, dict) else None
        raise InputError(
            f"{path}: holds the settings of {found}, not of ({dataset!r}, {method!r})",
            hint="pass the file data/configs/<dataset>/<method>.json of this run",
        )
    ds.pop(CODE_KEY, None)  # it makes DVC re-run the stage on a code change; not a setting
    return ds


def main(argv: list[str]) -> None:
    ds, args = parse_run(argv, "train", __doc__)
    cohort = cohort_for(ds)
    settings = train_settings(ds)
    seeds = list(ds["split"]["seeds"])
    # Read every split before starting workers, so a missing seed fails fast and in one place.
    jobs = [
        (ds, cohort, split_for_seed(ds["name"], cohort, seed, args.splits), seed, args.models)
        for seed in seeds
    ]
    workers = resolve_workers(ds["train"]["workers"], len(jobs), select_device(settings.device))
    threads = threads_per_worker(workers, settings.num_threads)
    what = f"{ds['name']} {ds['method']}"
    log.info("%s: %d seed(s) on %d worker(s) x %d thread(s)", what, len(jobs), workers, threads)
    results = parallel_map(train_seed, jobs, workers, threads, desc=f"{what} seeds")
    for seed, (epoch, score) in zip(seeds, results, strict=True):
        log.info("%s seed %d: best epoch %d, validation score %.4f", what, seed, epoch, score)


def train_seed(
    job: tuple[dict[str, Any], Cohort, np.ndarray, int, Path],
) -> tuple[int, float]:
    """Train one seed, write its checkpoint (with its per-epoch history); return (best epoch,
    validation score)."""
    from amc.methods import training_config
    from amc.training.loop import train_model

    ds, cohort, split, seed, models = job
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
    save_checkpoint(ckpt, models / f"seed{seed}.pt")  # same weights, same bytes
    return ckpt["best_epoch"], ckpt["best_val"]


if __name__ == "__main__":
    run(main)
