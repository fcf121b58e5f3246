"""importance: does the per-patient modality importance reflect modality quality?

Usage: python -m stages.importance [--quick] [--out reports/importance]
(params: importance_study.seeds / .quick / .grid / .n_patients / .task_side)
Runs the controlled corruption study of :mod:`amc.studies.importance` (in-memory
synthetic cohort, no pipeline data) and writes under <out>: validity.md (tables),
validity.csv (mean / std over seeds per estimator, attention, corruption, level), runs.csv
(per seed), task.csv (test F1 / AUROC per seed of the AMC variants and the late / early / oracle
fusion references; at noise 30 / 50 % unless task_side: all), metrics.json (headline
numbers), figure.png (importance of clean vs corrupted patients, paper's estimator vs
alignment).
"""

from __future__ import annotations

import logging
from pathlib import Path

from amc.studies.importance import config_from_params, run_study
from stages._cli import run, stage_parser
from stages.params import load_params

log = logging.getLogger("stages.importance")

OUT_DIR = Path("reports") / "importance"


def main(argv: list[str]) -> None:
    parser = stage_parser("importance", __doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, 50%% level only")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    study = load_params()["importance_study"]  # validated, defaults filled in
    quick = args.quick or study["quick"]
    seeds = tuple(study["seeds"])
    runs = run_study(
        args.out,
        seeds=seeds[:1] if quick else seeds,
        config=config_from_params({**study, "quick": quick}),
        grid=study["grid"],
    )
    log.info("importance: %d result rows written to %s", len(runs), args.out)


if __name__ == "__main__":
    run(main)
