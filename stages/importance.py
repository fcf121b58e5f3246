"""importance: does the per-patient modality importance reflect modality quality? (issue 6)

Usage: python -m stages.importance [--quick]   (params: importance_study.seeds / .quick)
Runs the controlled corruption study of :mod:`amc.studies.importance` (in-memory
synthetic cohort, no pipeline data) and writes under reports/importance/: validity.md (tables),
validity.csv (mean / std over seeds per estimator, attention, corruption, level), runs.csv
(per seed), metrics.json (headline numbers), figure.png (importance of clean vs corrupted
patients, paper's estimator vs alignment).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from amc.studies.importance import run_study
from stages._cli import run
from stages.params import load_params

log = logging.getLogger("stages.importance")

OUT_DIR = Path("reports") / "importance"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.importance", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, 50%% level only")
    args = parser.parse_args(argv)
    study = load_params().get("importance_study") or {}
    quick = args.quick or bool(study.get("quick", False))
    seeds = tuple(study.get("seeds", (0, 1, 2)))
    runs = run_study(OUT_DIR, seeds=seeds[:1] if quick else seeds, quick=quick)
    log.info("importance: %d result rows written to %s", len(runs), OUT_DIR)


if __name__ == "__main__":
    run(main)
