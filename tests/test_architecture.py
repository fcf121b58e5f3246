"""Imports point down the floors only (docs/architecture.md); a short AST check keeps it so.

Floors, top to bottom: stages -> studies / evaluation -> training / inference ->
features / wsi / synthetic -> data -> model / baselines -> runtime, config, schema, errors.
A module may import its own floor and the floors below it, never a floor above; nothing in
``amc/`` or ``stages/`` imports ``benchmarks/`` (scripts, not a package). Modules stay under
500 lines and functions under 80 (a short, commented allow-list holds the exceptions).
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
    "amc.cores": 0,
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
    for folder in ("amc", "stages", "benchmarks", "docs", "tests", ".ci", "pipelines"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".yaml", ".txt") and word.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    for name in ("README.md", "dvc.yaml", "params.yaml", "Makefile", "pyproject.toml"):
        if word.search((ROOT / name).read_text()):
            offenders.append(name)
    assert offenders == []


# --------------------------------------------------------------------------------------------
# size: a newcomer can hold a module and a function in their head
# --------------------------------------------------------------------------------------------
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Justified exceptions, ``path`` or ``path::function`` -> why. Keep it short; an entry that no
#: longer exceeds the limit is harmless but should be removed.
SIZE_ALLOWED: dict[str, str] = {
    # "path" or "path::function" -> why it may stay longer (none today)
}


def oversized(sources: dict[str, str]) -> list[str]:
    """``path (N lines)`` / ``path::function (N lines)`` over the limits, allow-list excepted.

    A function's length runs from its ``def`` line to its last line (docstring included);
    nested functions and methods count on their own.
    """
    found = []
    for path, source in sources.items():
        n_lines = len(source.splitlines())
        if n_lines > MAX_FILE_LINES and path not in SIZE_ALLOWED:
            found.append(f"{path} ({n_lines} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                name = f"{path}::{node.name}"
                if length > MAX_FUNCTION_LINES and name not in SIZE_ALLOWED:
                    found.append(f"{name} ({length} lines)")
    return sorted(found)


def test_files_and_functions_stay_small():
    sources = {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for folder in ("amc", "stages")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert "amc/config.py" in sources and "stages/extract.py" in sources
    assert oversized(sources) == []


def test_an_oversized_file_or_function_is_caught(monkeypatch):
    monkeypatch.setitem(SIZE_ALLOWED, "amc/training/loop.py::train_model", "planted exception")
    long_body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    long_method = long_body.replace("    ", "        ")
    fits = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 2))
    planted = {
        "amc/fake_long.py": f"def grown():\n{long_body}",  # 81 lines
        "amc/fake_fits.py": f"def small():\n    '''Doc.'''\n{fits}",  # exactly 80 lines
        "amc/fake_method.py": f"class A:\n    def m(self):\n{long_method}",
        "amc/fake_big.py": "x = 1\n" * (MAX_FILE_LINES + 1),
        "amc/training/loop.py": f"def train_model():\n{long_body}",  # allow-listed
    }
    assert oversized(planted) == [
        "amc/fake_big.py (501 lines)",
        "amc/fake_long.py::grown (81 lines)",
        "amc/fake_method.py::m (81 lines)",
    ]
