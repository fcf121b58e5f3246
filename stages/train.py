"""train@<dataset>: one AMC model per split seed.

Usage: python -m stages.train <dataset>
Outputs: models/<dataset>/seed<k>.pt, reports/<dataset>/train/seed<k>/ (dvclive curves).
An interrupted run resumes: per-epoch state is kept in .cache/train/<dataset>/ (outside DVC's
outputs, which DVC deletes before re-running a stage) and reused when the settings match.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from amc.data.store import atomic_path
from amc.errors import InputError
from stages._cli import run
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
    if len(argv) != 1:
        raise InputError("usage: python -m stages.train <dataset>")
    name = argv[0]
    ds = dataset_params(load_params(), name)
    cohort = cohort_for(ds)
    settings = train_settings(ds)
    kwargs = model_kwargs(ds)
    cache = Path(".cache/train") / name
    cache.mkdir(parents=True, exist_ok=True)
    for seed in ds["split"]["seeds"]:
        split = split_for_seed(name, cohort, seed)
        ckpt = _train_seed(cohort, split, kwargs, settings, seed, ds, cache)
        with atomic_path(Path("models") / name / f"seed{seed}.pt") as tmp:
            torch.save(ckpt, tmp)
        log_curves(ckpt["history"], Path("reports") / name / "train" / f"seed{seed}")
        log.info(
            "%s seed %d: best epoch %d, validation score %.4f",
            name,
            seed,
            ckpt["best_epoch"],
            ckpt["best_val"],
        )


def _train_seed(cohort, split, kwargs, settings, seed, ds, cache):
    from amc.training.loop import train_model

    return train_model(
        cohort,
        split,
        kwargs,
        settings,
        seed,
        max_features=ds.get("max_features"),
        resume_path=cache / f"seed{seed}.resume.pt",
        desc=f"{ds['name']} seed {seed}",
    )


if __name__ == "__main__":
    run(main)
