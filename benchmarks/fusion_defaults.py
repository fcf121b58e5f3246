"""Would a fusion setting change the built-in datasets? Train AMC with overrides on a finished
pipeline workspace's own configs and splits, and compare it with that workspace's AMC runs.

For each dataset: the workspace's ``data/configs/<d>/amc.json`` with the ``-S key=value``
overrides applied (dotted keys of that file, values parsed as YAML), trained and evaluated by
``python -m stages.run <d> amc`` on the workspace's ``data/splits/<d>.parquet`` (one training at
a time, ``nice -n 19``, one thread), then the task metric (macro-F1 and AUROC for
classification, C-index for survival) of the variant vs the workspace's
``reports/metrics/<d>/amc.json``: mean ± std over the split seeds (ddof=0) and the paired
difference variant − default on the same seeds (mean ± std, seeds won).

The workspace is only read: the runs write under ``<out>/<name>/`` (a scratch folder there links
``data`` to the workspace's, so the configs' relative feature paths resolve and the resume cache
stays out of the workspace). A finished dataset (its metrics file exists) is not retrained.
Without ``-S`` the default is re-trained: every paired difference must then be exactly 0
(determinism, and proof that the setup matches the workspace's).

Usage::

    python benchmarks/fusion_defaults.py WORKSPACE [-S fusion.pooling=deficit ...]
        [--datasets mimic-iv tcga-ucec ...] [--name candidate] [--out /tmp/fusion_defaults]

Prints a Markdown table; writes ``<out>/<name>/per_seed.csv`` (dataset, metric, seed, default,
variant, difference).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amc.evaluation.comparison import paired_difference, primary_metric  # noqa: E402
from stages.params import AMC, load_params, run_params  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("mimic-iv", "tcga-ucec", "tcga-luad", "tcga-lgg", "tcga-brca", "tcga-blca", "adni")
# One training at a time (the seeds one after the other); results do not depend on it.
SEQUENTIAL = ("train.workers=1", "train.num_threads=1")


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` with each ``dotted.key=value`` set (value parsed as YAML); a key
    must already exist, so a typo cannot silently train the default."""
    out = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"-S {item!r}: expected key=value, e.g. fusion.pooling=deficit")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise SystemExit(f"-S {item!r}: the run config has no key {key!r}")
        node[leaf] = yaml.safe_load(raw)
    return out


def fill_missing(config: dict[str, Any], current: dict[str, Any], where: str = "") -> list[str]:
    """Add to ``config`` (in place) the keys of ``current`` it lacks (settings newer than the
    workspace, at this tree's defaults); return their dotted names."""
    added = []
    for key, value in current.items():
        if key not in config:
            config[key] = copy.deepcopy(value)
            added.append(where + key)
        elif isinstance(value, dict) and isinstance(config[key], dict):
            added += fill_missing(config[key], value, f"{where}{key}.")
    return added


def run_config(workspace: Path, dataset: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The workspace's AMC config of ``dataset``, completed with this tree's newer keys, with
    ``overrides`` applied."""
    config = json.loads((workspace / "data/configs" / dataset / "amc.json").read_text())
    added = fill_missing(config, run_params(load_params(REPO / "params.yaml"), dataset, AMC))
    if added:
        print(f"{dataset}: keys newer than the workspace, at defaults: {added}", file=sys.stderr)
    return apply_overrides(config, [*SEQUENTIAL, *overrides])


def train_variant(workspace: Path, dataset: str, overrides: Sequence[str], root: Path) -> Path:
    """Train and evaluate ``dataset``'s AMC run with ``overrides``; return its metrics file."""
    metrics = root / "metrics" / f"{dataset}.json"
    if metrics.exists():
        return metrics
    config = run_config(workspace, dataset, overrides)
    config_path = root / "configs" / f"{dataset}.json"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=1, sort_keys=True))
    scratch = root / "ws"
    scratch.mkdir(parents=True, exist_ok=True)
    if not (scratch / "data").exists():
        (scratch / "data").symlink_to((workspace / "data").resolve())
    command = [
        *("nice", "-n", "19", sys.executable, "-m", "stages.run", dataset, "amc"),
        *("--config", str(config_path.resolve())),
        *("--splits", str((workspace / "data/splits" / f"{dataset}.parquet").resolve())),
        *("--models", str((root / "models" / dataset).resolve())),
        *("--out", str((root / "runs" / dataset).resolve())),
        *("--metrics", str(metrics.resolve())),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run(command, cwd=scratch, env=env, check=True)
    print(f"{dataset}: trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return metrics


def metric_names(task: str) -> list[str]:
    return ["f1", "auroc"] if task == "classification" else [primary_metric(task)]


def per_seed(metrics: dict[str, Any], name: str, seeds: Sequence[int]) -> dict[int, float]:
    return dict(zip(seeds, metrics[name]["per_seed"], strict=True))


def compare(workspace: Path, dataset: str, metrics_path: Path) -> tuple[list[str], list[list]]:
    """Markdown rows (one per metric) and per-seed CSV rows of variant vs default."""
    config = json.loads((workspace / "data/configs" / dataset / "amc.json").read_text())
    seeds = [int(s) for s in config["split"]["seeds"]]
    default = json.loads((workspace / "reports/metrics" / dataset / "amc.json").read_text())
    variant = json.loads(metrics_path.read_text())
    rows, csv_rows = [], []
    for name in metric_names(config["task"]):
        ref, ours = per_seed(default, name, seeds), per_seed(variant, name, seeds)
        paired = paired_difference(ours, ref)
        rows.append(
            f"| {dataset} | {name} | {default[name]['mean']:.3f} ± {default[name]['std']:.3f} "
            f"| {variant[name]['mean']:.3f} ± {variant[name]['std']:.3f} "
            f"| {paired['mean']:+.3f} ± {paired['std']:.3f} ({paired['wins']}/"
            f"{paired['n_seeds']}) | {'yes' if paired['beyond_std'] else 'no'} |"
        )
        csv_rows += [[dataset, name, s, ref[s], ours[s], ours[s] - ref[s]] for s in seeds]
    return rows, csv_rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workspace", type=Path, help="a finished pipeline workspace (read only)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VAL")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--name", default="variant", help="subfolder of --out for this variant")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fusion_defaults"))
    args = parser.parse_args(argv)
    root = args.out / args.name
    table = [
        "| dataset | metric | default AMC | variant | paired variant − default (won) "
        "| beyond std |",
        "|---|---|:-:|:-:|:-:|:-:|",
    ]
    seed_rows = []
    for dataset in args.datasets:
        metrics = train_variant(args.workspace, dataset, args.overrides, root)
        rows, csv_rows = compare(args.workspace, dataset, metrics)
        table += rows
        seed_rows += csv_rows
    with open(root / "per_seed.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dataset", "metric", "seed", "default", "variant", "difference"])
        writer.writerows(seed_rows)
    print("variant: " + (" ".join(args.overrides) or "(the default)"))
    print("\n".join(table))


if __name__ == "__main__":
    main()
