"""run@<dataset> (AMC), run-baseline@<dataset>-<method>, run-variant@<variant>: train one
(dataset, method) and evaluate it, in one process (one interpreter start per run instead of two:
the pipeline has about a hundred runs).

Usage: python -m stages.run <dataset> [<method>] [--config FILE] (the options of stages.train;
dvc.yaml passes the run's configure-stage file, data/configs/<dataset>/<method>.json).
Outputs: those of stages.train and stages.evaluate (models/<dataset>/<method>/,
reports/runs/<dataset>/<method>/).
"""

from __future__ import annotations

from stages import evaluate, train
from stages._cli import run


def main(argv: list[str]) -> None:
    train.main(argv)
    evaluate.main(argv)


if __name__ == "__main__":
    run(main)
