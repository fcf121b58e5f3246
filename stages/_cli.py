"""Shared plumbing of the stage CLIs: logging, clean error messages, exit codes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from amc.errors import InputError


def run(main: Callable[[list[str]], None]) -> None:
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
        main(sys.argv[1:])
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("stages").info("done in %.1f s", time.perf_counter() - start)
