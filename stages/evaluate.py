"""evaluate@<dataset>: test metrics over seeds, per-patient predictions, figures.

Usage: python -m stages.evaluate <dataset>
Outputs under reports/<dataset>/: metrics.json (mean / std / per_seed of each test metric),
predictions.parquet (every patient of every split and seed, with importance_<m> and
replaced_<m>), run.json (method label, task, chance levels), plots/*.png.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from amc.data.store import atomic_path, write_json, write_table
from amc.errors import InputError
from amc.evaluation import figures
from amc.evaluation.metrics import (
    aggregate_seeds,
    chance_levels,
    classification_metrics,
    survival_metrics,
)
from amc.training.checkpoint import load_model_checkpoint
from amc.training.loop import predict
from stages._cli import run
from stages._dataset import cohort_for, method_label, split_for_seed
from stages.params import dataset_params, load_params

log = logging.getLogger("stages.evaluate")


def seed_predictions(ds, cohort, seed: int, split: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Predictions of one seed's model for all patients, and its test metrics."""
    path = Path("models") / ds["name"] / f"seed{seed}.pt"
    ckpt = load_model_checkpoint(path, cohort, ds["name"])
    out = predict(ckpt, cohort, ds["train"]["device"], ds["train"]["precision"])
    frame = pd.DataFrame(
        {"patient_id": cohort.patient_ids.astype(str), "seed": seed, "split": split.astype(str)}
    )
    test = split == "test"
    if cohort.task == "classification":
        frame["label"] = np.asarray(cohort.class_names, dtype=object)[cohort.labels]
        for c, cls in enumerate(cohort.class_names):
            frame[f"prob_{cls}"] = out["prob"][:, c]
        metrics = classification_metrics(cohort.labels[test], out["prob"][test])
    else:
        frame["time"], frame["event"], frame["risk"] = cohort.time, cohort.event, out["risk"]
        train = split == "train"
        metrics = survival_metrics(
            cohort.time[test],
            cohort.event[test],
            out["risk"][test],
            cohort.time[train],
            cohort.event[train],
        )
    for m, name in enumerate(cohort.modalities):
        frame[f"importance_{name}"] = out["importance"][:, m]
        frame[f"replaced_{name}"] = out["replaced"][:, m].astype(np.int64)
        frame[f"present_{name}"] = cohort.present[:, m]
    return frame, metrics


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise InputError("usage: python -m stages.evaluate <dataset>")
    ds = dataset_params(load_params(), argv[0])
    cohort = cohort_for(ds)
    out_dir = Path("reports") / ds["name"]
    frames, per_seed = [], []
    for seed in ds["split"]["seeds"]:
        split = split_for_seed(ds["name"], cohort, seed)
        frame, metrics = seed_predictions(ds, cohort, seed, split)
        frames.append(frame)
        per_seed.append(metrics)
        log.info(
            "%s seed %d test: %s",
            ds["name"],
            seed,
            ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
        )
    pred = pd.concat(frames, ignore_index=True)
    summary = aggregate_seeds(per_seed)
    write_table(pred, out_dir / "predictions.parquet", {"dataset": ds["name"]})
    write_json(summary, out_dir / "metrics.json")
    info = {
        "dataset": ds["name"],
        "method": method_label(ds),
        "task": ds["task"],
        "modalities": cohort.modalities,
        "n_patients": len(cohort),
        "missing_per_modality": {
            m: int((~cohort.present[:, i]).sum()) for i, m in enumerate(cohort.modalities)
        },
    }
    if cohort.task == "classification":
        prevalence = np.bincount(cohort.labels, minlength=len(cohort.class_names))
        info["chance"] = {**chance_levels(prevalence), "prevalence": prevalence.tolist()}
        info["class_names"] = cohort.class_names
    write_json(info, out_dir / "run.json")
    plots = out_dir / "plots"
    figures.plot_importance_distributions(pred, cohort.modalities, plots / "importance.png")
    figures.plot_replacement_distributions(pred, cohort.modalities, plots / "replacement.png")
    with atomic_path(plots / "importance.csv") as tmp:
        figures.importance_plot_data(pred, cohort.modalities).to_csv(tmp, index=False)
    if cohort.task == "survival":
        test = pred[pred["split"] == "test"]
        figures.plot_kaplan_meier(
            test["time"].to_numpy(),
            test["event"].to_numpy(),
            test["risk"].to_numpy(),
            plots / "kaplan_meier.png",
            f"{ds['name']}: predicted risk groups (test, all seeds)",
        )


if __name__ == "__main__":
    run(main)
