"""evaluate@<dataset>: test metrics over seeds, per-patient predictions, figures.

Usage: python -m stages.evaluate <dataset> [--splits data/splits/<dataset>.parquet]
    [--models models/<dataset>] [--out reports/<dataset>]
Outputs under <out>: metrics.json (mean / std / per_seed of each test metric),
predictions.parquet (every patient of every split and seed, with importance_<m>,
replaced_<m> and agreement_<m>: see ``fusion_columns``), run.json (method label, task,
chance levels), plots/*.png.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from amc.data.store import atomic_path, write_json, write_table
from amc.evaluation import figures
from amc.evaluation.metrics import (
    aggregate_seeds,
    chance_levels,
    classification_metrics,
    survival_metrics,
)
from amc.inference import predict
from amc.training.checkpoint import load_model_checkpoint
from stages._cli import run, stage_parser
from stages._dataset import cohort_for, method_label, split_for_seed
from stages.params import dataset_params, load_params

log = logging.getLogger("stages.evaluate")


def seed_predictions(
    ds, cohort, seed: int, split: np.ndarray, models: Path | None = None
) -> tuple[pd.DataFrame, dict]:
    """Predictions of one seed's model (in ``models``, default models/<dataset>) for all
    patients, and its test metrics."""
    path = (models or Path("models") / ds["name"]) / f"seed{seed}.pt"
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
    return pd.concat([frame, fusion_columns(out, cohort)], axis=1), metrics


def fusion_columns(out: dict[str, np.ndarray], cohort) -> pd.DataFrame:
    """Per-patient columns of what the model computed, written only when the model returns it.

    ``importance_<m>`` / ``replaced_<m>``: the last fusion step's importance s and replaced-token
    count K (K is recomputed from s by ``amc.model.fusion.replacement_counts``);
    ``importance_step<k>_<m>`` / ``replaced_step<k>_<m>`` per step when there are several;
    ``agreement_<m>``: the cross-modal alignment importance (quality signal), whatever
    estimator drives fusion; ``present_<m>`` always.
    """
    columns: dict[str, np.ndarray] = {}
    for m, name in enumerate(cohort.modalities):
        if "importance" in out:
            columns[f"importance_{name}"] = out["importance"][:, m]
        if "replaced" in out:
            columns[f"replaced_{name}"] = out["replaced"][:, m].astype(np.int64)
        if "agreement" in out:
            columns[f"agreement_{name}"] = out["agreement"][:, m]
        for k in range(out["importance_steps"].shape[1] if "importance_steps" in out else 0):
            columns[f"importance_step{k}_{name}"] = out["importance_steps"][:, k, m]
            columns[f"replaced_step{k}_{name}"] = out["replaced_steps"][:, k, m].astype(np.int64)
        columns[f"present_{name}"] = cohort.present[:, m]
    return pd.DataFrame(columns)


def main(argv: list[str]) -> None:
    parser = stage_parser("evaluate", __doc__)
    parser.add_argument("dataset", help="a datasets.<name> item of params.yaml")
    parser.add_argument("--splits", type=Path, help="the split stage's Parquet file")
    parser.add_argument("--models", type=Path, help="folder of the seed<k>.pt checkpoints")
    parser.add_argument("--out", type=Path, help="output folder")
    args = parser.parse_args(argv)
    ds = dataset_params(load_params(), args.dataset)
    cohort = cohort_for(ds)
    out_dir = args.out or Path("reports") / ds["name"]
    frames, per_seed = [], []
    for seed in ds["split"]["seeds"]:
        split = split_for_seed(ds["name"], cohort, seed, args.splits)
        frame, metrics = seed_predictions(ds, cohort, seed, split, args.models)
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
    if f"importance_{cohort.modalities[0]}" in pred:  # models without importance: no such plots
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
