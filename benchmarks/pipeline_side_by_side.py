"""Side-by-side wall time of the AMC run stages of the pipeline in this revision and an earlier one.

``side_by_side.py`` times a training step and ``training_side_by_side.py`` a whole training, both
in one process. ``make repro`` pays for more: a process per stage, its imports, the seed workers,
the evaluation, DVC. This benchmark times what ``dvc repro`` does for AMC in both revisions:

- each revision is checked out into a fresh git worktree; the first ``dvc repro`` of the AMC
  stages of ``--datasets`` builds everything upstream (synthetic data, features, splits) and is
  timed too ("first run", data stages included);
- then, over ``--rounds`` alternating rounds (the order flips every round), the training resume
  states (``.cache/train``) are removed, so nothing is reused, and ``dvc repro --force
  --single-item`` re-runs exactly the AMC stages: train and evaluate every seed;
- per round: the wall time of that command and the epochs the seeds trained (early stopping:
  two revisions need not stop at the same epoch, so the time per epoch is reported too).

The AMC stages of a revision are ``pipelines/amc/dvc.yaml:run@<dataset>`` where that file exists,
else ``train@<dataset>`` and ``evaluate@<dataset>`` (the first pipelines). The default datasets are
the five TCGA cohorts, whose patients, feature sizes, model and training settings are the same in
every revision since the first pipeline (MIMIC-IV's cohort and ADNI's volume size changed).

Each worktree gets its own environment first, as ``make repro`` makes it (``make
.venv/.installed``: the packages that revision declares; not timed). Uncommitted changes are not
benchmarked: "this revision" is HEAD.

    PYTHONPATH=. python benchmarks/pipeline_side_by_side.py --against ecb6688
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from amc.cores import available_cores

try:
    from benchmarks import side_by_side  # imported from the repository root (tests)
except ImportError:  # run as a script: this folder is on the path
    import side_by_side

DEFAULT_OUT = Path("benchmarks/results/pipeline_side_by_side.json")
TCGA = ["tcga-ucec", "tcga-luad", "tcga-lgg", "tcga-brca", "tcga-blca"]

# Run in a worktree (its ``amc`` on the path): the seeds' epochs from its AMC checkpoints.
_EPOCHS = """
import glob, json, sys, torch
epochs = {}
for dataset in sys.argv[1:]:
    paths = glob.glob(f"models/{dataset}/seed*.pt") or glob.glob(f"models/{dataset}/amc/seed*.pt")
    epochs[dataset] = sorted(
        len(torch.load(p, map_location="cpu", weights_only=False)["history"]) for p in paths
    )
print(json.dumps(epochs))
"""


def amc_stages(tree: Path, datasets: Sequence[str]) -> list[str]:
    """The DVC stages that train and evaluate AMC on ``datasets`` in the revision at ``tree``."""
    if (tree / "pipelines" / "amc" / "dvc.yaml").exists():
        return [f"pipelines/amc/dvc.yaml:run@{d}" for d in datasets]
    return [s for d in datasets for s in (f"train@{d}", f"evaluate@{d}")]


def _env(tree: Path) -> dict[str, str]:
    """The environment a stage of ``tree`` runs in: its own virtual environment first."""
    bin_dir = str(tree / ".venv" / "bin")
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def install(tree: Path, log: Path) -> float:
    """``make .venv/.installed`` in ``tree`` (what ``make repro`` installs first: the packages
    that revision declares); its wall time. A failure raises with the log's tail."""
    return _logged(["make", ".venv/.installed"], tree, log)


def dvc_repro(tree: Path, stages: Sequence[str], force: bool, log: Path) -> float:
    """``dvc repro`` of ``stages`` in ``tree`` (``--force --single-item`` if ``force``); its
    wall time in seconds. Output goes to ``log``; a failure raises with the log's tail."""
    command = ["dvc", "repro", *(["--force", "--single-item"] if force else []), *stages]
    return _logged(command, tree, log)


def _logged(command: list[str], tree: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as out:
        try:
            proc = subprocess.run(command, cwd=tree, env=_env(tree), stdout=out, stderr=out)
        except FileNotFoundError as err:
            raise RuntimeError(
                f"`{command[0]}` is neither in {tree / '.venv' / 'bin'} nor on PATH: "
                "install that revision's environment first (make .venv/.installed)"
            ) from err
    rc = proc.returncode
    wall = time.perf_counter() - start
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise RuntimeError(
            f"`{' '.join(command)}` failed in {tree} (exit {rc}); log {log}:\n{tail}"
        )
    return wall


def trained_epochs(tree: Path, datasets: Sequence[str]) -> dict[str, list[int]]:
    """Per dataset, the epochs each seed trained (sorted), from the checkpoints in ``tree``."""
    out = subprocess.run(
        [str(tree / ".venv" / "bin" / "python"), "-c", _EPOCHS, *datasets],
        cwd=tree,
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def summarise(rounds: dict[str, list[dict]]) -> dict:
    """Medians and the speed-up over alternating rounds.

    ``rounds``: ``{"base": [...], "new": [...]}``, one ``{"wall_s", "epochs"}`` per round, in
    round order. Speed-up: the median over rounds of base wall / new wall, with its range; per
    epoch: the same for wall time divided by the epochs trained.
    """
    pairs = list(zip(rounds["base"], rounds["new"], strict=True))
    if not pairs:
        raise ValueError("no rounds to summarise")
    ratios = [b["wall_s"] / n["wall_s"] for b, n in pairs]
    per_epoch = [(b["wall_s"] / b["epochs"]) / (n["wall_s"] / n["epochs"]) for b, n in pairs]
    return {
        "base_wall_s": statistics.median(r["wall_s"] for r in rounds["base"]),
        "new_wall_s": statistics.median(r["wall_s"] for r in rounds["new"]),
        "base_epochs": rounds["base"][0]["epochs"],
        "new_epochs": rounds["new"][0]["epochs"],
        "speedup": statistics.median(ratios),
        "speedup_min": min(ratios),
        "speedup_max": max(ratios),
        "speedup_per_epoch": statistics.median(per_epoch),
        "speedup_per_epoch_min": min(per_epoch),
        "speedup_per_epoch_max": max(per_epoch),
    }


def compare(trees: dict[str, Path], datasets: Sequence[str], rounds: int, logs: Path) -> dict:
    """First runs, then ``rounds`` alternating forced re-runs of the AMC stages in both trees."""
    logs.mkdir(parents=True, exist_ok=True)
    stages = {k: amc_stages(tree, datasets) for k, tree in trees.items()}
    installed, first = {}, {}
    for which, tree in trees.items():
        print(f"{which}: installing its environment ...", flush=True)
        installed[which] = install(tree, logs / f"{which}.log")
        print(
            f"{which}: first run of {len(stages[which])} stages (data stages included) ...",
            flush=True,
        )
        first[which] = dvc_repro(tree, stages[which], False, logs / f"{which}.log")
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    for r in range(rounds):
        for which in ("base", "new") if r % 2 == 0 else ("new", "base"):
            tree = trees[which]
            shutil.rmtree(tree / ".cache" / "train", ignore_errors=True)
            wall = dvc_repro(tree, stages[which], True, logs / f"{which}.log")
            epochs = trained_epochs(tree, datasets)
            runs[which].append(
                {"wall_s": wall, "epochs": sum(map(sum, epochs.values())), "per_dataset": epochs}
            )
        print(
            f"round {r + 1}: base {runs['base'][-1]['wall_s']:.1f} s "
            f"({runs['base'][-1]['epochs']} epochs), new {runs['new'][-1]['wall_s']:.1f} s "
            f"({runs['new'][-1]['epochs']} epochs)",
            flush=True,
        )
    return {
        "install_s": installed,
        "first_run_s": first,
        "stages": stages,
        "rounds": runs,
        **summarise(runs),
    }


def run(against: str, datasets: Sequence[str], rounds: int, out: Path = DEFAULT_OUT) -> dict:
    """Benchmark HEAD against ``against``; print a markdown row, write JSON."""
    repo = Path(__file__).resolve().parents[1]
    meta = {
        "base": side_by_side.revision(repo, against),
        "new": side_by_side.revision(repo, "HEAD"),
        "rounds": rounds,
        "datasets": list(datasets),
        "cores": available_cores(),
    }
    print(
        f"pipeline side by side: base {meta['base']} vs HEAD {meta['new']}, AMC stages of "
        f"{', '.join(datasets)}, {rounds} alternating rounds, wall time"
    )
    with (
        side_by_side.revision_tree(repo, against) as base,
        side_by_side.revision_tree(repo, "HEAD") as new,
    ):
        result = compare({"base": base, "new": new}, datasets, rounds, out.parent / "pipeline_logs")
    print(
        "| base s (epochs) | new s (epochs) | speed-up (range) | per epoch (range) |\n"
        "|---|---|---|---|"
    )
    print(
        f"| {result['base_wall_s']:.1f} ({result['base_epochs']}) "
        f"| {result['new_wall_s']:.1f} ({result['new_epochs']}) "
        f"| {result['speedup']:.2f}x ({result['speedup_min']:.2f}-{result['speedup_max']:.2f}) "
        f"| {result['speedup_per_epoch']:.2f}x ({result['speedup_per_epoch_min']:.2f}-"
        f"{result['speedup_per_epoch_max']:.2f}) |"
    )
    print(
        f"first runs (data stages included): base {result['first_run_s']['base']:.0f} s, "
        f"new {result['first_run_s']['new']:.0f} s"
    )
    report = {"meta": meta, "result": result}
    side_by_side.write_report(report, out)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="GIT_REV", required=True, help="earlier revision")
    parser.add_argument("--datasets", nargs="+", default=TCGA, help="default: the TCGA cohorts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating forced re-runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds={args.rounds} must be at least 1")
    return run(args.against, args.datasets, args.rounds, args.out)


if __name__ == "__main__":
    main()
