"""efficiency: paper Table 10 measured: parameters, forward GFLOPs per sample, training step time
and peak memory of AMC and every baseline at every dataset's input shapes, in one process.

Usage: python -m stages.efficiency [--configs data/configs/efficiency.json] [--out
reports/efficiency.json] (output: dataset -> method label -> measures; the configs file, written
by the configure stage, holds the settings of every run measured). Each model is the one its run
trains (:func:`amc.training.loop.resolve_model`: input sizes from the preprocessing fitted on the
first split seed's training patients); the batch is the dataset's train.batch_size. Nothing
here reads a trained run, so the stage depends on the configs, features and splits, not on the
~100 runs' outputs. Times depend on the machine: compare within
one file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc.baselines import build_model
from amc.data.preprocess import fit_preprocessing
from amc.data.store import write_json
from amc.errors import InputError
from amc.evaluation.efficiency import measure, random_inputs
from amc.methods import training_config
from amc.runtime import select_device
from amc.training.loop import resolve_model
from stages._cli import run, stage_parser
from stages._dataset import cohort_for, model_kwargs, split_for_seed
from stages.params import read_configure_file

log = logging.getLogger("stages.efficiency")
#: the run settings that decide a cohort and its fitted preprocessing
COHORT_KEYS = ("modalities", "encoders", "drop_incomplete", "drop_unmatched", "max_features")


def read_configs(path: Path) -> list[dict[str, Any]]:
    """The settings of every run to measure, from the configure stage's efficiency file."""
    try:
        return read_configure_file(path)["runs"]
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not the configure stage's efficiency file ({exc!r})",
            hint="re-run the configure stage",
        ) from None


def main(argv: list[str]) -> None:
    parser = stage_parser("efficiency", __doc__)
    parser.add_argument("--configs", type=Path, default=Path("data/configs/efficiency.json"))
    parser.add_argument("--out", type=Path, default=Path("reports/efficiency.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: comparable step times whatever else runs
    results: dict[str, dict[str, dict[str, float]]] = {}
    fitted: dict[str, tuple[Any, np.ndarray, dict[str, Any]]] = {}
    for ds in read_configs(args.configs):
        dataset, method = ds["name"], ds["method"]
        # one cohort and preprocessing per dataset, shared by the methods that read the same
        key = json.dumps([dataset, *(ds.get(k) for k in COHORT_KEYS)], sort_keys=True, default=str)
        if key not in fitted:
            cohort = cohort_for(ds)
            split = split_for_seed(dataset, cohort, ds["split"]["seeds"][0])
            train_idx = np.flatnonzero(split == "train")
            fitted[key] = (
                cohort,
                train_idx,
                fit_preprocessing(cohort, train_idx, ds.get("max_features")),
            )
        cohort, train_idx, scalers = fitted[key]
        model_config = training_config(ds["family"], model_kwargs(ds), ds["options"])
        config, name, options, _ = resolve_model(cohort, train_idx, scalers, model_config)
        torch.manual_seed(0)
        model = build_model(name, config, options)
        inputs = random_inputs(config.modalities, config.encoders, ds["train"]["batch_size"])
        stats = measure(model, inputs, device=select_device(ds["train"]["device"]))
        results.setdefault(dataset, {})[ds["label"]] = stats
        log.info("%s %s: %s", dataset, method, ", ".join(f"{k}={v:.4g}" for k, v in stats.items()))
    write_json(results, args.out)


if __name__ == "__main__":
    run(main)
