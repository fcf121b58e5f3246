"""efficiency: paper Table 10 measured: parameters, forward GFLOPs per sample, training step time
and peak memory of AMC and every baseline at every dataset's input shapes, in one process.

Usage: python -m stages.efficiency   (output: reports/efficiency.json, dataset -> method label
-> measures). Shapes come from each dataset's AMC run (reports/runs/<dataset>/amc/run.json); the
batch is the dataset's train.batch_size. Times depend on the machine: compare within one file.
"""

from __future__ import annotations

import json
import logging

import torch

from amc.data.store import write_json
from amc.errors import InputError
from amc.evaluation.efficiency import measure, random_inputs
from amc.methods import build, config_for
from amc.runtime import select_device
from stages._cli import run
from stages._dataset import RUNS_DIR, model_kwargs
from stages.params import AMC, list_runs, load_params, run_params

log = logging.getLogger("stages.efficiency")


def main(argv: list[str]) -> None:
    if argv:
        raise InputError("usage: python -m stages.efficiency")
    params = load_params()
    torch.set_num_threads(1)  # one thread: comparable step times whatever else runs
    results: dict[str, dict[str, dict[str, float]]] = {}
    for dataset, method in list_runs(params):
        ds = run_params(params, dataset, method)
        if ds["family"] == AMC and method != AMC:
            continue  # variants: AMC's cost with a switch flipped
        info_path = RUNS_DIR / dataset / AMC / "run.json"
        if not info_path.exists():
            raise InputError(f"{info_path}: not found", hint=f"run `dvc repro` for {dataset}")
        info = json.loads(info_path.read_text())
        heads = {"num_classes": info["num_classes"]} if info["task"] == "classification" else {}
        if info["task"] == "survival":
            heads["num_bins"] = info["num_bins"]
        config = config_for(
            ds["family"],
            model_kwargs(ds),
            modalities={
                k: tuple(v) if isinstance(v, list) else v for k, v in info["input_sizes"].items()
            },
            task=info["task"],
            **heads,
        )
        torch.manual_seed(0)
        model = build(ds["family"], config, ds["options"])
        inputs = random_inputs(info["input_sizes"], info.get("encoders") or {}, info["batch_size"])
        stats = measure(model, inputs, device=select_device(ds["train"]["device"]))
        results.setdefault(dataset, {})[ds["label"]] = stats
        log.info("%s %s: %s", dataset, method, ", ".join(f"{k}={v:.4g}" for k, v in stats.items()))
    write_json(results, "reports/efficiency.json")


if __name__ == "__main__":
    run(main)
