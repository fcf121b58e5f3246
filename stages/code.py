"""code@<name>: one fingerprint of the source files a family of stages runs.

Usage: python -m stages.code --out data/code/<name>.json PATH [PATH ...]
(PATH: a source file or folder; a folder contributes every file under it but ``__pycache__``).
Output: a JSON map of every file to its SHA-256.

Why: the pipeline has one stage per (dataset, method) run, about a hundred of them, and they all
run the same code. Declaring the ~20 code paths on every run stage made DVC hash the same folders
and keep the same ~20 entries in ``dvc.lock`` once per stage. The run stages depend on this one
file instead (a smaller ``dvc.lock``; the time between two run stages did not change measurably in
CI); DVC re-runs them exactly when a file listed here changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from amc.data.store import atomic_path
from amc.errors import InputError
from stages._cli import run, stage_parser


def source_files(paths: list[Path]) -> list[Path]:
    """Every file named, and every file under every folder named (sorted, unique)."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
        elif path.is_file():
            found.add(path)
        else:
            raise InputError(f"{path}: not found", hint="fix the path in dvc.yaml's code stage")
    return sorted(found)


def fingerprint(paths: list[Path]) -> dict[str, str]:
    """``{file: sha256}`` of :func:`source_files`."""
    return {
        p.as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in source_files(paths)
    }


def main(argv: list[str]) -> None:
    parser: argparse.ArgumentParser = stage_parser("code", __doc__)
    parser.add_argument("--out", type=Path, required=True, help="the fingerprint JSON to write")
    parser.add_argument("paths", type=Path, nargs="+", help="source files and folders")
    args = parser.parse_args(argv)
    text = json.dumps(fingerprint(args.paths), indent=1, sort_keys=True) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    run(main)
