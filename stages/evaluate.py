"""evaluate@<dataset>-<method>: test metrics over seeds, per-patient predictions, figures.

Usage: python -m stages.evaluate <dataset> [<method>] [--splits ...] [--models ...] [--out ...]
(arguments as in stages.train)
Outputs: <metrics> (default reports/metrics/<dataset>/<method>.json: mean / std / per_seed of
each test metric) and the folder <out> (default reports/runs/<dataset>/<method>/, written as a
whole): predictions.parquet (every patient of every split and seed; for AMC also
importance_<m>, replaced_<m>, agreement_<m> and donated_<from>_to_<to>: see
``fusion_columns``), run.json (method, label, task, seeds, input sizes, chance levels),
plots/*.png and plots/curves.tsv (every seed's per-epoch training curves, from its checkpoint).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amc.data.store import atomic_path, write_json, write_table
from amc.evaluation.metrics import (
    aggregate_seeds,
    chance_levels,
    classification_metrics,
    survival_metrics,
)
from amc.inference import predict
from amc.training.checkpoint import load_model_checkpoint
from stages._cli import run
from stages._dataset import cohort_for, split_for_seed
from stages.params import AMC
from stages.train import parse_run

log = logging.getLogger("stages.evaluate")
#: the training losses a run's curves.tsv holds (those its method logs), then ``val_score``
CURVES = ("loss", "task", "instance", "token", "balance")


def seed_predictions(
    ds, cohort, seed: int, split: np.ndarray, models: Path
) -> tuple[pd.DataFrame, dict, dict]:
    """Predictions of one seed's model (in ``models``) for all patients, its test metrics and
    raw outputs."""
    ckpt = load_model_checkpoint(models / f"seed{seed}.pt", cohort, ds["name"])
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
    frame = pd.concat([frame, fusion_columns(out, cohort)], axis=1)
    return frame, metrics, {**out, "config": ckpt["config"], "history": ckpt.get("history", [])}


def fusion_columns(out: dict[str, np.ndarray], cohort) -> pd.DataFrame:
    """Per-patient columns of what the model computed, written only when the model returns it.

    ``importance_<m>`` / ``replaced_<m>``: the last fusion step's importance s and replaced-token
    count K (K is recomputed from s by ``amc.model.fusion.replacement_counts``);
    ``importance_step<k>_<m>`` / ``replaced_step<k>_<m>`` per step when there are several;
    ``agreement_<m>``: the cross-modal alignment importance (quality signal), whatever
    estimator drives fusion; ``donated_<from>_to_<to>``: tokens of <to> replaced by <from>'s in
    the last fusion step; ``present_<m>`` always.
    """
    names = cohort.modalities
    columns: dict[str, np.ndarray] = {}
    for m, name in enumerate(names):
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
    if "donors" in out:  # donors[p, target, donor]
        from amc.evaluation.figures import donor_column  # lazily: see write_plots

        for t, target in enumerate(names):
            for d, donor in enumerate(names):
                if d != t:
                    columns[donor_column(donor, target)] = out["donors"][:, t, d].astype(np.int64)
    return pd.DataFrame(columns)


def run_info(ds: dict[str, Any], cohort, config: dict[str, Any]) -> dict[str, Any]:
    """run.json: what the report needs to place this run in the tables."""
    info = {
        "dataset": ds["name"],
        "method": ds["method"],
        "family": ds["family"],
        "label": ds["label"],
        "tables": ds.get("tables", []),
        "task": ds["task"],
        "seeds": list(ds["split"]["seeds"]),
        "modalities": cohort.modalities,
        "input_sizes": config["modalities"],
        "encoders": config.get("encoders") or {},
        "num_classes": config.get("num_classes"),
        "num_bins": config.get("num_bins"),
        "options": ds["options"],
        # AMC's four modules (the ablation tables); a baseline's settings hold only the keys it
        # reads, so AMC's switches there would show schema defaults, not the baseline
        "components": {
            "token_fusion": bool(ds["fusion"]["enabled"]),
            "contrastive_loss": bool(ds["loss"]["instance"] > 0 or ds["loss"]["token"] > 0),
            "differential_attention": ds["model"]["attention"] == "differential",
            "smoe": ds["model"]["ffn"] == "smoe",
        }
        if ds["family"] == AMC
        else None,
        "batch_size": ds["train"]["batch_size"],
        "n_patients": len(cohort),
        "missing_per_modality": {
            m: int((~cohort.present[:, i]).sum()) for i, m in enumerate(cohort.modalities)
        },
    }
    if cohort.task == "classification":
        prevalence = np.bincount(cohort.labels, minlength=len(cohort.class_names))
        info["chance"] = {**chance_levels(prevalence), "prevalence": prevalence.tolist()}
        info["class_names"] = cohort.class_names
    return info


def main(argv: list[str]) -> None:
    ds, args = parse_run(argv, "evaluate", __doc__)
    cohort = cohort_for(ds)
    out_dir = args.out
    frames, per_seed, token_scores, config, histories = [], [], [], {}, {}
    for seed in ds["split"]["seeds"]:
        split = split_for_seed(ds["name"], cohort, seed, args.splits)
        frame, metrics, out = seed_predictions(ds, cohort, seed, split, args.models)
        frames.append(frame)
        per_seed.append(metrics)
        config = out["config"]
        histories[seed] = out["history"]
        if "token_scores" in out:
            token_scores.append((out["token_scores"][split == "test"], split == "test"))
        log.info(
            "%s %s seed %d test: %s",
            ds["name"],
            ds["method"],
            seed,
            ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
        )
    pred = pd.concat(frames, ignore_index=True)
    # One folder, one DVC output: written whole (a killed run leaves the old folder or none).
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_table(pred, tmp / "predictions.parquet", {"dataset": ds["name"]})
        write_json(run_info(ds, cohort, config), tmp / "run.json")
        write_plots(cohort, pred, token_scores, histories, tmp / "plots")
    write_json(aggregate_seeds(per_seed), args.metrics)


def write_curves(histories: dict[int, list[dict]], path: Path) -> None:
    """Every seed's per-epoch curves in one tab-separated file: columns ``seed``, ``step`` (the
    epoch), the training losses of :data:`CURVES` the method logs and ``val_score``, one row per
    seed and epoch (a loss one seed lacks is an empty cell).

    One file in the run's plots folder rather than dvclive's layout (four nested folders and
    seven files per seed): DVC walks every output folder on each `dvc repro`, and the ~100 runs'
    curve folders were a quarter of the files a no-op repro visited. ``stages/report.py`` reads
    it into reports/curves/ for `dvc plots`.
    """
    rows = []
    for seed, history in sorted(histories.items()):
        for step, record in enumerate(history):
            row = {"seed": seed, "step": step}
            row.update({key: float(record[key]) for key in CURVES if key in record})
            row["val_score"] = float(record["val_score"])
            rows.append(row)
    columns = ["seed", "step"] + [k for k in (*CURVES, "val_score") if any(k in r for r in rows)]
    lines = ["\t".join(columns)]
    lines += ["\t".join(repr(r[c]) if c in r else "" for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def write_plots(
    cohort, pred: pd.DataFrame, token_scores: list, histories: dict, plots: Path
) -> None:
    """The run's figures: importance / replacement / donor / token-score histograms (AMC with
    fusion); and its training curves (curves.tsv). Kaplan-Meier risk groups are drawn by the
    report stage, every method of a dataset in one figure and one process."""
    names = cohort.modalities
    with atomic_path(plots) as tmp:
        tmp.mkdir()
        write_curves(histories, tmp / "curves.tsv")
        has_importance = f"importance_{names[0]}" in pred
        if not (has_importance or token_scores):
            return
        # matplotlib takes ~1 s to import; the baselines (three quarters of the pipeline's runs)
        # draw nothing, so they do not pay for it.
        from amc.evaluation import figures

        if has_importance:
            figures.plot_importance_distributions(pred, names, tmp / "importance.png")
            figures.plot_replacement_distributions(pred, names, tmp / "replacement.png")
            figures.importance_plot_data(pred, names).to_csv(tmp / "importance.csv", index=False)
        if len(names) > 1 and figures.donor_column(names[1], names[0]) in pred:
            figures.plot_donor_distributions(pred, names, tmp / "donors.png")
        if token_scores:
            # token_scores: per seed (test rows (T, M, N), ...); only modalities a patient has
            scores = {
                m: np.concatenate(
                    [s[:, i][cohort.present[mask][:, i]].reshape(-1) for s, mask in token_scores]
                )
                for i, m in enumerate(names)
            }
            figures.plot_token_score_distributions(scores, tmp / "token_scores.png")


if __name__ == "__main__":
    run(main)
