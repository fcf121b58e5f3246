"""run@<dataset> (AMC), run-baseline@<dataset>-<method>, run-variant@<variant>: train one
(dataset, method) and evaluate it, in one process (one interpreter start per run instead of two:
the pipeline has about a hundred runs).

Usage: python -m stages.run <dataset> [<method>]. Outputs: those of stages.train and
stages.evaluate (models/<dataset>/<method>/, reports/runs/<dataset>/<method>/).
"""

from __future__ import annotations

from stages import evaluate, train
from stages._cli import run


def main(argv: list[str]) -> None:
    train.main(argv)
    evaluate.main(argv)


if __name__ == "__main__":
    run(main)
