"""Side-by-side time of whole AMC trainings in this tree and an earlier git revision.

``benchmarks/side_by_side.py`` times one training step. A pipeline run pays for more than its
steps: batching, an evaluation every epoch, model selection and the history. This benchmark
times what one seed of a run stage does, ``amc.training.loop.train_model``, in both trees:

- the same in-memory cohort (``--patients`` patients, vector modalities of ``--features``
  sizes, a binary label with signal in the first modality, the last modality absent for 15 %
  of patients), the same 70 / 15 / 15 split and seed;
- the model and training settings of the default ``params.yaml`` (hidden 64, 8 heads, 2
  improved blocks, 16 tokens, 8 experts top-2, 1 encoder layer, dropout 0.1, batch 64, fusion
  warm-up 5 epochs) for exactly ``--epochs`` epochs (no early stop);
- one torch thread, the process CPU time of ``train_model`` (the wall time is reported too).

The two trees' worker processes alternate, the order flipping every round, and the speed-up is
the median over rounds of (base time / this tree's time), with the range over rounds. Only the
worker (``_worker``) runs under the other revision; it uses ``Cohort``, ``train_model`` and
``TrainSettings``, which every revision since the first pipeline has.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/training_side_by_side.py --against ecb6688
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path("benchmarks/results/training_side_by_side.json")
MODEL = {
    "hidden": 64,
    "heads": 8,
    "layers": 2,
    "tokens": 16,
    "experts": 8,
    "top_k": 2,
    "encoder_layers": 1,
    "dropout": 0.1,
}
TRAIN = {"batch_size": 64, "warmup_epochs": 5, "device": "cpu", "num_threads": 1}


def make_cohort(patients: int, features: list[int], seed: int):
    """The benchmark cohort and split (imports ``amc`` of the running tree)."""
    import numpy as np

    from amc.data.cohort import Cohort

    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(len(features))]
    data = {
        n: rng.standard_normal((patients, f)).astype(np.float32)
        for n, f in zip(names, features, strict=True)
    }
    labels = (data[names[0]][:, :8].sum(axis=1) > 0).astype(np.int64)
    present = np.ones((patients, len(names)), dtype=bool)
    present[:, -1] = rng.random(patients) >= 0.15
    data[names[-1]][~present[:, -1]] = 0.0
    cohort = Cohort(
        patient_ids=np.array([f"p{i:05d}" for i in range(patients)]),
        modalities=names,
        features=data,
        present=present,
        task="classification",
        labels=labels,
        class_names=["0", "1"],
    )
    order = rng.permutation(patients)
    split = np.empty(patients, dtype=object)
    n_train, n_val = int(0.7 * patients), int(0.15 * patients)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "val"
    split[order[n_train + n_val :]] = "test"
    return cohort, split.astype(str)


def _worker() -> None:
    """Serve training requests on stdin (one JSON per line), answer on stdout; runs in either
    tree. Request: ``{"patients", "features", "epochs", "seed"}``; answer: ``{"cpu_s", "wall_s",
    "epochs", "best_val"}``."""
    import torch

    from amc.training.loop import TrainSettings, train_model

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    for line in sys.stdin:
        req = json.loads(line)
        cohort, split = make_cohort(req["patients"], req["features"], req["seed"])
        epochs = req["epochs"]
        settings = TrainSettings(epochs=epochs, patience=epochs + 1, **TRAIN)
        cpu, wall = time.process_time(), time.perf_counter()
        checkpoint = train_model(cohort, split, dict(MODEL), settings, seed=req["seed"])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        answer = {
            "cpu_s": cpu,
            "wall_s": wall,
            "epochs": len(checkpoint["history"]),
            "best_val": float(checkpoint["best_val"]),
        }
        print(json.dumps(answer), flush=True)


def compare(base: Path, new: Path, rounds: int, request: dict) -> dict:
    """Alternate the two trees' trainings over ``rounds``: times, ratio median and range."""
    side_by_side = _side_by_side()
    script = Path(__file__)
    workers = {
        "base": side_by_side.Worker(base, script),
        "new": side_by_side.Worker(new, script),
    }
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    ratios = []
    try:
        for r in range(rounds):
            order = ("base", "new") if r % 2 == 0 else ("new", "base")
            for which in order:
                runs[which].append(workers[which].ask(request))
            ratios.append(runs["base"][-1]["cpu_s"] / runs["new"][-1]["cpu_s"])
            print(
                f"round {r + 1}: base {runs['base'][-1]['cpu_s']:.1f} s, "
                f"new {runs['new'][-1]['cpu_s']:.1f} s CPU",
                flush=True,
            )
    finally:
        for worker in workers.values():
            worker.close()
    return {
        "base_cpu_s": statistics.median(x["cpu_s"] for x in runs["base"]),
        "new_cpu_s": statistics.median(x["cpu_s"] for x in runs["new"]),
        "base_wall_s": statistics.median(x["wall_s"] for x in runs["base"]),
        "new_wall_s": statistics.median(x["wall_s"] for x in runs["new"]),
        "speedup": statistics.median(ratios),
        "speedup_min": min(ratios),
        "speedup_max": max(ratios),
        "epochs": runs["new"][0]["epochs"],
        "base_best_val": [x["best_val"] for x in runs["base"]],
        "new_best_val": [x["best_val"] for x in runs["new"]],
    }


def _side_by_side():
    """The step benchmark's module, whose worktree, worker and report helpers this one uses:
    ``benchmarks.side_by_side`` from the repository root, or ``side_by_side`` from this folder
    when this file runs as a script without the root on the path."""
    try:
        from benchmarks import side_by_side
    except ImportError:
        import side_by_side
    return side_by_side


def run(against: str, rounds: int, request: dict, out: Path = DEFAULT_OUT) -> dict:
    """Benchmark this tree against ``against``; print a markdown row, write JSON."""
    side_by_side = _side_by_side()
    repo = Path(__file__).resolve().parents[1]
    meta = {
        "base": side_by_side.revision(repo, against),
        "new": side_by_side.tree_revision(repo),
        "rounds": rounds,
        **request,
    }
    print(
        f"training side by side: base {meta['base']} vs this tree {meta['new']}, "
        f"{request['patients']} patients, features {request['features']}, "
        f"{request['epochs']} epochs, 1 thread, process CPU time, {rounds} alternating rounds"
    )
    with side_by_side.revision_tree(repo, against) as base:
        result = compare(base, repo, rounds, request)
    print(
        "| base CPU s / training | new CPU s / training | speed-up (range over rounds) "
        "| wall s base / new |\n|---|---|---|---|"
    )
    print(
        f"| {result['base_cpu_s']:.1f} | {result['new_cpu_s']:.1f} "
        f"| {result['speedup']:.2f}x ({result['speedup_min']:.2f}-{result['speedup_max']:.2f}) "
        f"| {result['base_wall_s']:.1f} / {result['new_wall_s']:.1f} |"
    )
    report = {"meta": meta, "result": result}
    side_by_side.write_report(report, out)
    return report


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--against", metavar="GIT_REV", help="compare with this revision")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--patients", type=int, default=350, help="cohort size (MIMIC-IV's)")
    parser.add_argument("--features", type=int, nargs="+", default=[768, 768, 790])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.worker:
        _worker()
        return None
    if not args.against:
        parser.error("--against GIT_REV is required")
    request = {
        "patients": args.patients,
        "features": args.features,
        "epochs": args.epochs,
        "seed": args.seed,
    }
    return run(args.against, args.rounds, request, args.out)


if __name__ == "__main__":
    main()
