"""Shared plumbing of the stage CLIs: logging, clean error messages, exit codes.

Exit codes: 0 done, 2 bad input or parameters (:class:`amc.errors.InputError`), 3 an OS error
(no space left, no permission, read-only file system), reported with the path and the stage.
"""

from __future__ import annotations

import errno
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
    return f"{name}@{'-'.join(argv)}" if argv else name


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


def run(main: Callable[[list[str]], None]) -> None:
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
    argv = sys.argv[1:]
    try:
        main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT)
    except OSError as exc:
        print(os_error_message(exc, stage_name(main, argv)), file=sys.stderr)
        sys.exit(EXIT_OS)
    logging.getLogger("stages").info("done in %.1f s", time.perf_counter() - start)
