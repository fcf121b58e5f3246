"""run@<dataset> (AMC), run-baseline@<dataset>-<method>, run-variant@<variant>: train one
(dataset, method) and evaluate it, in one process (one interpreter start per run instead of two:
the pipeline has about a hundred runs).

Usage: python -m stages.run <dataset> [<method>] [--config FILE] (the options of stages.train;
dvc.yaml passes the run's configure-stage file, data/configs/<dataset>/<method>.json).
Outputs: those of stages.train and stages.evaluate (models/<dataset>/<method>/,
reports/runs/<dataset>/<method>/).
"""

from __future__ import annotations

from stages._cli import run


def main(argv: list[str]) -> None:
    # Imported here, not at module level: the spawned seed workers re-import this module as
    # their ``__mp_main__``, and they only need stages.train (which unpickling the job brings),
    # not the evaluation code and matplotlib (~1 s of a worker's start on this machine kind).
    from stages import evaluate, train

    train.main(argv)
    evaluate.main(argv)


if __name__ == "__main__":
    run(main)
