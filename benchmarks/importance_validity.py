"""Does AMC's per-patient modality importance tell which modality was poor?

A script over :mod:`amc.studies.importance` (the study, its cohort and its outputs are described
there; the ``importance`` stage runs the same study with params ``importance_study``). Here any
seeds, corruptions, levels, attentions and task-side AMC variants can be chosen.

Usage::

    python benchmarks/importance_validity.py [--quick] [--seeds 0 1 2] [--workers 2]
        [--corruptions noise ...] [--levels 0.5 ...] [--attentions differential ...]
        [--grid default|full] [--variants alignment:deficit:importance ...]
        [--task-corruptions noise ...] [--task-levels 0.3 0.5] [--baselines late early oracle]
        [--instance 1.0] [--modality-heads 1.0] [--epochs 6] [--n-patients 2000]
        [--private-latent 4]
        [--out benchmarks/results/importance]

The task-metric table of the full grid (all 12 AMC variants) at 30 / 50 % noise::

    python benchmarks/importance_validity.py --grid full --corruptions noise \
        --levels 0.3 0.5 --attentions differential --seeds 0 1 2
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

from amc.studies.importance import (  # noqa: E402
    ATTENTIONS,
    CORRUPTIONS,
    QUICK,
    StudyConfig,
    run_study,
)
from amc.studies.importance_task import BASELINES, GRIDS, is_variant  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 50%% level")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--workers", default="auto", help="parallel trainings (auto: 1/core)")
    parser.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, default=None)
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--attentions", nargs="+", choices=ATTENTIONS, default=None)
    parser.add_argument("--task-corruptions", nargs="+", choices=CORRUPTIONS, default=None)
    parser.add_argument(
        "--task-levels", type=float, nargs="+", default=None, help="task side (0.3 0.5)"
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), default=None, help="AMC variants")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="task-side AMC variants as importance:replace_rule:pooling (instead of --grid); "
        "pooling: concat | importance | importance_logits",
    )
    parser.add_argument(
        "--baselines", nargs="*", choices=BASELINES, default=None, help="task-side references"
    )
    parser.add_argument("--instance", type=float, default=None, help="L_I weight (1.0)")
    parser.add_argument(
        "--modality-heads",
        type=float,
        default=None,
        help="loss.modality_heads: per-modality heads' own task loss (importance_logits) (1.0)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per model")
    parser.add_argument(
        "--n-patients", type=int, default=None, help="cohort size (test split: 15 %% of it)"
    )
    parser.add_argument(
        "--private-latent", type=int, default=None, help="latent dims only m0 sees (0)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/importance"))
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ((0,) if args.quick else (0, 1, 2))
    cfg = QUICK if args.quick else StudyConfig()
    if args.grid is not None:
        cfg = replace(cfg, amc_variants=GRIDS[args.grid])
    if args.variants is not None:
        variants = tuple(tuple(v.split(":")) for v in args.variants)
        unknown = [":".join(v) for v in variants if not is_variant(v)]
        if unknown:
            parser.error(f"unknown --variants {unknown}; each is importance:replace_rule:pooling")
        cfg = replace(cfg, amc_variants=variants)
    for key in (
        "corruptions",
        "levels",
        "attentions",
        "task_corruptions",
        "task_levels",
        "baselines",
        "instance",
        "modality_heads",
        "epochs",
        "n_patients",
        "private_latent",
    ):
        value = getattr(args, key)
        if value is not None:
            cfg = replace(cfg, **{key: tuple(value) if isinstance(value, list) else value})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_study(args.out, seeds=seeds, config=cfg, workers=args.workers)
    text = (args.out / "validity.md").read_text()
    print(text[text.index("### Task metric: AMC variants") :])
    print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()
