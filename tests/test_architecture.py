"""Imports point down the floors only (docs/architecture.md); a short AST check keeps it so.

Floors, top to bottom: stages -> studies / evaluation -> training / inference ->
features / wsi / synthetic -> data -> model / baselines -> runtime, config, schema, errors.
A module may import its own floor and the floors below it, never a floor above; nothing in
``amc/`` or ``stages/`` imports ``benchmarks/`` (scripts, not a package).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOORS: dict[str, int] = {
    "stages": 6,
    "amc.studies": 5,
    "amc.evaluation": 5,
    "amc.training": 4,
    "amc.inference": 4,
    "amc.features": 3,
    "amc.wsi": 3,
    "amc.synthetic": 3,
    "amc.data": 2,
    "amc.model": 1,
    "amc.baselines": 1,
    "amc.methods": 1,
    "amc.runtime": 0,
    "amc.scoring": 0,
    "amc.config": 0,
    "amc.schema": 0,
    "amc.errors": 0,
    "amc": 0,
}
FORBIDDEN = ("benchmarks", "tests")


def floor_of(module: str) -> int | None:
    """The floor of a project module (longest matching prefix); None for third-party modules."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in FLOORS:
            return FLOORS[prefix]
    return None


def imported_modules(source: str, module: str) -> list[str]:
    """Every module ``source`` imports, at any depth (function bodies, TYPE_CHECKING blocks)."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """``importer -> imported`` pairs that point up a floor or into benchmarks/tests."""
    bad = []
    for module, source in sources.items():
        own = floor_of(module)
        for target in imported_modules(source, module):
            if target.split(".")[0] in FORBIDDEN:
                bad.append(f"{module} -> {target}")
                continue
            floor = floor_of(target)
            if own is not None and floor is not None and floor > own:
                bad.append(f"{module} -> {target}")
    return sorted(set(bad))


def project_sources() -> dict[str, str]:
    sources = {}
    for folder in ("amc", "stages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            sources[".".join(parts)] = path.read_text()
    return sources


def test_imports_point_down_the_floors():
    sources = project_sources()
    assert "amc.training.loop" in sources and "stages.train" in sources
    assert violations(sources) == []


def test_a_planted_wrong_import_is_caught():
    planted = {
        "amc.model.fake": "from amc.training.loop import train_model\n",
        "amc.features.fake": "def f():\n    from amc.training import device\n",
        "amc.data.fake": "from ..evaluation import metrics\n",
        "stages.fake": "import benchmarks.importance_validity\n",
        "amc.training.fine": "from amc.data.store import write_table\nimport numpy\n",
    }
    assert violations(planted) == [
        "amc.data.fake -> amc.evaluation",
        "amc.data.fake -> amc.evaluation.metrics",
        "amc.features.fake -> amc.training",
        "amc.features.fake -> amc.training.device",
        "amc.model.fake -> amc.training.loop",
        "amc.model.fake -> amc.training.loop.train_model",
        "stages.fake -> benchmarks.importance_validity",
    ]


def test_no_reference_to_documents_outside_the_repository():
    """Code, docs and error hints explain themselves: no citation of an external design card."""
    word = re.compile(r"\b" + "SP" + r"EC\b")  # spelled apart so this file does not match itself
    offenders = []
    for folder in ("amc", "stages", "benchmarks", "docs", "tests", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".yaml", ".txt") and word.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    for name in ("README.md", "dvc.yaml", "params.yaml", "Makefile", "pyproject.toml"):
        if word.search((ROOT / name).read_text()):
            offenders.append(name)
    assert offenders == []
