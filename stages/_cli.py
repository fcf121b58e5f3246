"""Shared plumbing of the stage CLIs: argument parsing, logging, clean error messages, exit codes.

Every stage is ``python -m stages.<stage> ...`` (what dvc.yaml runs) and ``amc <stage> ...`` (the
console entry point, for use outside DVC); ``--help`` describes each stage. Exit codes: 0 done,
2 bad input or parameters (an :class:`amc.errors.InputError`, or arguments argparse refuses),
3 an OS error (no space left, no permission, read-only file system), reported with the path and
the stage.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import time
from collections.abc import Callable

from amc.errors import InputError

EXIT_INPUT = 2
EXIT_OS = 3

_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_ACCESS = {errno.EACCES, errno.EPERM, errno.EROFS}


def stage_name(main: Callable[[list[str]], None], argv: list[str]) -> str:
    """The DVC stage a CLI call runs, e.g. ``train@mimic-iv`` or ``extract@tcga-rna``."""
    module = sys.modules.get(getattr(main, "__module__", ""))
    spec = getattr(module, "__spec__", None)  # `python -m stages.x` runs as __main__
    name = (spec.name if spec is not None else getattr(main, "__module__", "stage")).rsplit(".")[-1]
    positional = []
    for arg in argv:  # the item is the leading positional arguments (options carry paths)
        if arg.startswith("-"):
            break
        positional.append(arg)
    return f"{name}@{'-'.join(positional)}" if positional else name


def os_error_message(exc: OSError, stage: str) -> str:
    """One line naming the stage, the path and the cause, and a hint that fits the cause."""
    if exc.filename is None:  # the message itself is all there is (pyarrow names the file)
        cause, path = str(exc), "(no path given)"
    else:
        cause, path = exc.strerror or str(exc), str(exc.filename)
    if exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    if exc.errno in _SPACE:
        hint = "free disk space (or raise the file-size limit) where the path lives, then re-run"
    elif exc.errno in _ACCESS:
        hint = "make the folder writable for this user (or run from a writable checkout)"
    else:
        hint = "check the path and the file system, then re-run"
    return f"error: {stage}: {cause}: {path}\n  hint: {hint}"


#: Stage name -> what it does (``amc --help``).
STAGES = {
    "code": "one fingerprint of the source files the run stages execute",
    "configure": "the resolved settings of every (dataset, method) run, one file each",
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
    """Run a stage's ``main(argv)``; bad input exits with 2, an OS error with 3, both with one
    clear message on stderr."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("matplotlib", "PIL", "urllib3", "filelock", "fsspec", "dvc_objects"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    start = time.perf_counter()
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT)
    except OSError as exc:
        print(os_error_message(exc, stage_name(main, argv)), file=sys.stderr)
        sys.exit(EXIT_OS)
    logging.getLogger("stages").info(
        "done in %.1f s (CPU %.1f s, imports and worker processes included)",
        time.perf_counter() - start,
        cpu_seconds(),
    )


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
