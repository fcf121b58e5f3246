"""code: one fingerprint per family of stages of the source files that family runs.

Usage: python -m stages.code --out data/code/<name>.json PATH [PATH ...] [--out ... PATH ...]
(each ``--out`` starts a group; PATH: a source file or folder, a folder contributing every file
under it but ``__pycache__``). Output: per group, a JSON map of every file to its SHA-256.

Why: the pipeline has one stage per (dataset, method) run, about a hundred of them, 13
extractions and a split per dataset, and each family runs the same code. Declaring the ~15-20
code paths on every stage made DVC walk the same folders and keep the same entries in
``dvc.lock`` once per stage, on every `dvc repro`, even a no-op one. The stages depend on their
family's file instead; DVC re-runs them exactly when a file listed in it changes (a group whose
files did not change is rewritten with the same bytes, so its stages stay up to date).
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


def parse_groups(argv: list[str]) -> list[tuple[Path, list[Path]]]:
    """``--out FILE PATH [PATH ...]`` repeated -> [(FILE, [PATH, ...]), ...]."""
    if not argv or argv[0] != "--out":
        raise InputError(
            "code: expected `--out FILE PATH [PATH ...]`",
            hint="each group of paths starts with --out and its fingerprint file",
        )
    groups: list[tuple[Path, list[Path]]] = []
    words = iter(argv)
    for word in words:
        if word == "--out":
            out = next(words, None)
            if out is None or out.startswith("-"):
                raise InputError("code: --out needs a file name", hint="--out data/code/run.json")
            groups.append((Path(out), []))
        else:
            groups[-1][1].append(Path(word))
    for out, paths in groups:
        if not paths:
            raise InputError(f"code: no paths for {out}", hint="list the files it fingerprints")
    return groups


def main(argv: list[str]) -> None:
    parser: argparse.ArgumentParser = stage_parser("code", __doc__)
    if {"-h", "--help"} & set(argv):
        parser.parse_args(["--help"])  # prints the usage and exits 0
    for out, paths in parse_groups(argv):
        text = json.dumps(fingerprint(paths), indent=1, sort_keys=True) + "\n"
        with atomic_path(out) as tmp:
            tmp.write_text(text)


if __name__ == "__main__":
    run(main)
