"""Shared plumbing of the stage CLIs: argument parsing, logging, clean error messages, exit codes.

Every stage is ``python -m stages.<stage> ...`` (what dvc.yaml runs) and ``amc <stage> ...`` (the
console entry point, for use outside DVC). Exit codes: 0 ok, 2 bad input (an ``InputError``, or
arguments argparse refuses); ``--help`` describes each stage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Callable

from amc.errors import InputError

#: Stage name -> what it does (``amc --help``).
STAGES = {
    "synthesize": "write a synthetic cohort in a source's real raw format",
    "extract": "raw files of one source -> one modality's feature table",
    "split": "patient-level stratified train / val / test splits, one per seed",
    "train": "one model per split seed",
    "evaluate": "test metrics and per-patient predictions of a dataset's models",
    "importance": "the controlled study of the modality importance",
    "report": "the paper's tables and figures from every dataset's results",
}


def stage_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of stage ``name``: its docstring's first line is the description."""
    summary, _, details = (doc or "").strip().partition("\n")
    return argparse.ArgumentParser(
        prog=f"python -m stages.{name}",
        description=summary,
        epilog=details.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--model` must not silently mean `--models`
    )


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main(argv)``; bad input prints one clear message and exits with 2."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("matplotlib", "PIL", "urllib3", "filelock", "fsspec", "dvc_objects"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    start = time.perf_counter()
    try:
        main(sys.argv[1:] if argv is None else argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("stages").info("done in %.1f s", time.perf_counter() - start)


def console(argv: list[str] | None = None) -> None:
    """``amc <stage> [args]``: run one stage outside DVC (``amc <stage> --help`` for its args)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:<11} {what}" for name, what in STAGES.items()]
        print("usage: amc <stage> [args]   (amc <stage> --help)\n\nstages:\n" + "\n".join(lines))
        sys.exit(0 if argv else 2)
    if argv[0] not in STAGES:
        print(f"error: unknown stage {argv[0]!r}; one of {', '.join(STAGES)}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(f"stages.{argv[0]}")
    run(module.main, argv[1:])
