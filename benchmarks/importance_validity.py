"""Does AMC's per-patient modality importance tell which modality was poor?

A script over :mod:`amc.studies.importance` (the study, its cohort and its outputs are described
there; the ``importance`` stage runs the same study with params ``importance_study``). Here any
seeds, corruptions, levels, attentions and task-side AMC variants can be chosen.

Usage::

    python benchmarks/importance_validity.py [--quick] [--seeds 0 1 2] [--workers 2]
        [--corruptions noise ...] [--levels 0.5 ...] [--attentions differential ...]
        [--grid default|full] [--variants alignment:deficit:importance ...]
        [--task-corruptions noise ...] [--task-levels 0.3 0.5] [--baselines late early oracle]
        [--instance 1.0] [--modality-heads 1.0]
        [--modality-heads-weights importance] [--epochs 6] [--n-patients 2000]
        [--private-latent 4] [--label-noise 0.5] [--baselines-only]
        [--out benchmarks/results/importance]

The task-metric table of the full grid (all 12 AMC variants) at 30 / 50 % noise::

    python benchmarks/importance_validity.py --grid full --corruptions noise \
        --levels 0.3 0.5 --attentions differential --seeds 0 1 2

``--baselines-only`` trains late and oracle fusion only (seconds per seed) and prints the room
a cohort leaves for the goal (oracle − late, paired over seeds): to choose a cohort first.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
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
from amc.studies.importance_task import (  # noqa: E402
    BASELINES,
    GRIDS,
    baseline_headroom,
    is_variant,
)


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
        "pooling: concat | importance | deficit | importance_logits | deficit_logits",
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
    parser.add_argument(
        "--modality-heads-weights",
        choices=("uniform", "importance"),
        default=None,
        help="loss.modality_heads_weights: each head's loss over patients (uniform)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per model")
    parser.add_argument(
        "--n-patients", type=int, default=None, help="cohort size (test split: 15 %% of it)"
    )
    parser.add_argument(
        "--private-latent", type=int, default=None, help="latent dims only m0 sees (0)"
    )
    parser.add_argument(
        "--label-noise", type=float, default=None, help="std of the label's noise term (0.5)"
    )
    parser.add_argument(
        "--baselines-only",
        action="store_true",
        help="train late and oracle fusion only; print the oracle's room over late fusion",
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
        "modality_heads_weights",
        "epochs",
        "n_patients",
        "private_latent",
        "label_noise",
    ):
        value = getattr(args, key)
        if value is not None:
            cfg = replace(cfg, **{key: tuple(value) if isinstance(value, list) else value})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.baselines_only:
        print_headroom(seeds, cfg, args.workers, args.out)
        return
    run_study(args.out, seeds=seeds, config=cfg, workers=args.workers)
    text = (args.out / "validity.md").read_text()
    print(text[text.index("### Task metric: AMC variants") :])
    print(f"outputs in {args.out}")


def print_headroom(seeds: Sequence[int], cfg: StudyConfig, workers: int | str, out: Path) -> None:
    """Late and oracle fusion only: the oracle's paired room over late fusion per setting;
    per-seed rows in ``out/headroom.csv``."""
    cfg = replace(cfg, baselines=("late", "oracle"))  # early fusion decides nothing here
    start = time.perf_counter()
    rows, room = baseline_headroom(seeds, cfg, workers)
    print(
        f"n_patients={cfg.n_patients} label_noise={cfg.label_noise} "
        f"private_latent={cfg.private_latent} epochs={cfg.epochs} seeds={list(seeds)} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    print("| setting | late | oracle | oracle − late, paired | seeds | mean / std |")
    print("|---|:-:|:-:|:-:|:-:|:-:|")
    for r in room.itertuples():
        print(
            f"| {r.corruption} {r.level:.0%} | {r.late_f1:.3f} ± {r.late_f1_std:.3f} | "
            f"{r.oracle_f1:.3f} ± {r.oracle_f1_std:.3f} | {r.room_mean:+.3f} ± {r.room_std:.3f} "
            f"| {r.room_wins} | {r.room_ratio:.1f} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "headroom.csv", index=False)
    print(f"per-seed rows in {out / 'headroom.csv'}")


if __name__ == "__main__":
    main()
