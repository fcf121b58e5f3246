"""Apply a profile (a partial params tree) to params.yaml in place, keeping its comments.

Usage: python -m stages.profile profiles/paper.yaml [params.yaml]. Mappings merge key by key; a
null removes the key; anything else replaces. The result is validated before it is written.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from amc.data.store import atomic_path
from amc.errors import InputError
from stages._cli import run
from stages.params import load_params


def merge(tree: Any, profile: dict[str, Any]) -> None:
    """Merge ``profile`` into the mapping ``tree`` in place (null deletes)."""
    for key, value in profile.items():
        if value is None:
            tree.pop(key, None)
        elif isinstance(value, dict) and isinstance(tree.get(key), dict):
            merge(tree[key], value)
        else:
            tree[key] = value


def main(argv: list[str]) -> None:
    from ruamel.yaml import YAML

    if len(argv) not in (1, 2):
        raise InputError("usage: python -m stages.profile <profile.yaml> [params.yaml]")
    profile_path, params_path = Path(argv[0]), Path(argv[1] if len(argv) == 2 else "params.yaml")
    for path in (profile_path, params_path):
        if not path.exists():
            raise InputError(f"{path}: not found", hint="run from the repository root")
    yaml = YAML()  # round-trip: comments and key order survive
    yaml.width = 100
    tree = yaml.load(params_path.read_text())
    merge(tree, YAML(typ="safe").load(profile_path.read_text()) or {})
    buffer = io.StringIO()
    yaml.dump(tree, buffer)
    with atomic_path(params_path) as tmp:
        tmp.write_text(buffer.getvalue())
        load_params(tmp)  # an invalid result never replaces params.yaml


if __name__ == "__main__":
    run(main)
