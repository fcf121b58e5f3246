"""Does AMC's per-patient modality importance tell which modality was poor? (issue 6)

A script over :mod:`amc.studies.importance` (the study, its cohort and its outputs are described
there; the ``importance`` stage runs the same study with params ``importance_study``). Here any
seeds, corruptions or levels can be chosen.

Usage::

    python benchmarks/importance_validity.py [--quick] [--seeds 0 1 2] [--workers 2]
        [--corruptions noise ...] [--levels 0.5 ...] [--instance 1.0]
        [--out benchmarks/results/importance]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amc.studies.importance import CORRUPTIONS, QUICK, StudyConfig, run_study  # noqa: E402
from amc.studies.importance_report import validity_rows  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 50%% level")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--workers", default="auto", help="parallel trainings (auto: 1/core)")
    parser.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, default=None)
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--instance", type=float, default=None, help="L_I weight (1.0)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/importance"))
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ((0,) if args.quick else (0, 1, 2))
    cfg = QUICK if args.quick else StudyConfig()
    for key in ("corruptions", "levels", "instance"):
        value = getattr(args, key)
        if value is not None:
            cfg = replace(cfg, **{key: tuple(value) if isinstance(value, list) else value})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    runs = run_study(args.out, seeds=seeds, config=cfg, workers=args.workers)
    table = validity_rows(runs).groupby(["corruption", "level", "attention", "estimator"])
    print(table["corruption_auroc"].mean().unstack("estimator").round(3).to_string())
    print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()
