"""dvc.yaml is complete and exact: every project module a stage's command imports (followed
transitively through amc/, stages/ and benchmarks/, lazy imports included) is covered by one of
the stage's deps, so `dvc repro` can never call a stage up to date after a code change that
alters its outputs; and params deps are narrow (a WSI-only key does not re-run RNA extraction).

Stages come from DVC's own parser (foreach / matrix / ${...} resolved), so the test follows
whatever stages dvc.yaml holds.
"""

from __future__ import annotations

import ast
import shlex
import shutil
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("amc", "stages", "benchmarks")


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imported_modules(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere (module level or inside functions), with the
    packages whose ``__init__`` runs on the way; ``if TYPE_CHECKING:`` imports excluded."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1] if rel.name != "__init__" else rel.parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            stem = ".".join([*base, *([node.module] if node.module else [])])
        else:
            stem = node.module or ""
        names.add(stem)
        names.update(f"{stem}.{alias.name}" for alias in node.names)  # submodules
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] not in PACKAGES:
            continue
        for i in range(1, len(parts) + 1):  # every package __init__ on the way runs too
            if _module_file(".".join(parts[:i])) is not None:
                found.add(".".join(parts[:i]))
    return found


@cache
def import_closure(module: str) -> frozenset[Path]:
    """Files of every project module that running ``python -m <module>`` may import."""
    seen: set[str] = set()
    todo = [module]
    parts = module.split(".")
    todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    while todo:
        name = todo.pop()
        if name in seen or _module_file(name) is None:
            continue
        seen.add(name)
        todo.extend(_imported_modules(_module_file(name)))
    return frozenset(_module_file(name).relative_to(ROOT) for name in seen)


def _command_module(cmd: str) -> str:
    words = shlex.split(cmd)
    assert words[0].startswith("python"), f"stage command {cmd!r}: expected `python ...`"
    if words[1] == "-m":
        return words[2]
    return Path(words[1]).with_suffix("").as_posix().replace("/", ".")


def load_stages(root: Path) -> list[dict]:
    """Every resolved stage of the pipeline in ``root`` (its dvc.yaml and pipelines/*/dvc.yaml):
    name, cmd, deps, params (DVC's parser)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = []
        for stage in repo.index.stages:
            params = [key for dep in stage.params for key in dep.params]
            deps = [Path(d.def_path).as_posix() for d in stage.deps if d not in stage.params]
            outs = [Path(o.def_path).as_posix() for o in stage.outs]
            stages.append(
                {"name": stage.name, "cmd": stage.cmd, "deps": deps, "params": params, "outs": outs}
            )
        return with_code_fingerprints(stages)


def load_edited_stages(tmp_path: Path, dvc_yaml: dict) -> list[dict]:
    """:func:`load_stages` of an edited copy of dvc.yaml (with params.yaml and the run stages'
    pipelines/) in ``tmp_path``."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(
        ROOT / "pipelines", tmp_path / "pipelines", ignore=shutil.ignore_patterns("*.lock")
    )
    return load_stages(tmp_path)


def with_code_fingerprints(stages: list[dict]) -> list[dict]:
    """A dep on an output of the ``stages.code`` stage stands for the paths that output
    fingerprints: those its group in the stage's cmd names that are also the stage's deps (a
    path missing from either is not covered: DVC would not re-run, or the file would not
    change)."""
    from stages.code import parse_groups

    producers = {}
    for stage in stages:
        if _command_module(stage["cmd"]) != "stages.code":
            continue
        for out, paths in parse_groups(shlex.split(stage["cmd"])[3:]):
            producers[out.as_posix()] = [
                p.as_posix() for p in paths if p.as_posix() in stage["deps"]
            ]
    # the configure stage stamps the digest of its `--code` fingerprint into every run file of its
    # `--out` folder (<out>/<dataset>/<method>.json; when that fingerprint is one of its deps): a
    # dep on such a file stands for the fingerprinted paths too
    stamped: dict[str, list[str]] = {}
    for stage in stages:
        if _command_module(stage["cmd"]) != "stages.configure":
            continue
        words = shlex.split(stage["cmd"])
        if "--code" in words and "--out" in words:
            code, out = words[words.index("--code") + 1], words[words.index("--out") + 1]
            if code in stage["deps"]:
                stamped[out.rstrip("/") + "/"] = producers.get(code, [])

    def covered(dep: str) -> list[str]:
        stamp = [
            p
            for folder, paths in stamped.items()
            if dep.startswith(folder) and "/" in dep.removeprefix(folder)
            for p in paths
        ]
        return [dep, *producers.get(dep, []), *stamp]

    for stage in stages:
        stage["deps"] = [p for d in stage["deps"] for p in covered(d)]
    return stages


def uncovered_modules(stage: dict) -> list[str]:
    """Project source files the stage's command imports that no dep path covers."""
    deps = [Path(d) for d in stage["deps"]]
    missing = []
    for path in sorted(import_closure(_command_module(stage["cmd"]))):
        if not any(path == d or d in path.parents for d in deps):
            missing.append(path.as_posix())
    return missing


@pytest.fixture(scope="module")
def stages() -> list[dict]:
    return load_stages(ROOT)


def test_every_imported_module_is_a_dep(stages):
    assert len(stages) > 10
    problems = {s["name"]: uncovered_modules(s) for s in stages}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"stages import modules missing from their dvc.yaml deps: {problems}"


def test_code_deps_exist(stages):
    """A code dep that does not exist would make `dvc repro` fail (or hide a rename)."""
    missing = {
        (s["name"], d)
        for s in stages
        for d in s["deps"]
        if d.split("/")[0] in PACKAGES and not (ROOT / d).exists()
    }
    assert not missing, sorted(missing)


def test_removing_a_dep_is_caught(tmp_path, stages):
    """The check itself works: drop one module dep of one stage and it must be reported."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    name, body = next(
        (n, b)
        for n, b in dvc_yaml["stages"].items()
        if "foreach" not in b and "matrix" not in b and "stages.code" not in b["cmd"]
    )
    body = body.get("do", body)
    # the stage's own command module: no code fingerprint stands for it
    removed = _command_module(body["cmd"]).replace(".", "/") + ".py"
    assert removed in body["deps"]
    body["deps"].remove(removed)
    changed = {s["name"]: s for s in load_edited_stages(tmp_path, dvc_yaml)}[name]
    assert removed in uncovered_modules(changed)
    original = {s["name"]: s for s in stages}[name]
    assert removed not in uncovered_modules(original)


def _code_stage(dvc_yaml: dict) -> dict:
    return next(b for b in dvc_yaml["stages"].values() if "stages.code" in str(b.get("cmd")))


def test_code_stage_fingerprints_what_it_depends_on():
    """The paths the code stage hashes (its cmd, every group) are exactly its deps (but its own
    module), and each group writes one of its outs."""
    from stages.code import parse_groups

    body = _code_stage(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    groups = parse_groups(shlex.split(body["cmd"])[3:])
    hashed = {p.as_posix() for _, paths in groups for p in paths}
    assert hashed == {d for d in body["deps"] if d != "stages/code.py"}
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in body["outs"]}
    assert {out.as_posix() for out, _ in groups} == outs


def test_a_path_missing_from_the_code_fingerprint_is_caught(tmp_path):
    """Run stages declare their code through the code stage: a module dropped there is reported
    for every run stage that imports it."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    _code_stage(dvc_yaml)["deps"].remove("amc/scoring.py")
    runs = [s for s in load_edited_stages(tmp_path, dvc_yaml) if s["name"].startswith("run")]
    assert runs and all("amc/scoring.py" in uncovered_modules(s) for s in runs)


@pytest.mark.parametrize("drop", ["--code", "dep"])
def test_run_stages_lose_their_code_without_the_configure_stamp(tmp_path, drop):
    """A run stage reaches its code only through its config file, which the configure stage
    stamps with the run code's fingerprint: without `--code` in configure's cmd, or without that
    fingerprint among configure's deps (DVC would not re-run configure), every run stage's code
    is reported uncovered."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    configure = dvc_yaml["stages"]["configure"]
    if drop == "--code":
        configure["cmd"] = configure["cmd"].replace("--code data/code/run.json", "")
    else:
        configure["deps"].remove("data/code/run.json")
    stages = load_edited_stages(tmp_path, dvc_yaml)
    runs = [s for s in stages if s["name"].startswith("run")]
    assert runs and all("stages/train.py" in uncovered_modules(s) for s in runs)
    others = [s for s in stages if s["name"] in ("efficiency", "report")]
    assert len(others) == 2 and not any(uncovered_modules(s) for s in others)


def test_a_path_missing_from_one_group_is_caught_for_that_family_only(tmp_path):
    """Groups are separate: dropping amc/data from the split group's paths (it stays a dep of
    the code stage, for the other groups) is reported for the split stages, not the runs."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    body = _code_stage(dvc_yaml)
    head, _, split_group = body["cmd"].partition("--out data/code/split.json")
    split_paths, sep, rest = split_group.partition("--out")
    body["cmd"] = head + "--out data/code/split.json" + split_paths.replace(" amc/data ", " ")
    body["cmd"] += sep + rest
    stages = load_edited_stages(tmp_path, dvc_yaml)
    splits = [s for s in stages if s["name"].startswith("split@")]
    assert splits and all("amc/data/splits.py" in uncovered_modules(s) for s in splits)
    runs = [s for s in stages if s["name"].startswith("run@")]
    assert runs and not any(uncovered_modules(s) for s in runs)


def test_extractions_depend_on_what_they_read_in_the_raw_folder(stages):
    """New slides re-run the slide extraction only; every TCGA extraction reads the clinical
    table (its cases)."""
    raw = {
        s["name"]: {d for d in s["deps"] if d.startswith("data/synthetic/")}
        for s in stages
        if s["name"].startswith("extract@")
    }
    tcga = "data/synthetic/tcga"
    assert raw["extract@tcga-wsi"] == {f"{tcga}/clinical.tsv", f"{tcga}/slides"}
    assert raw["extract@tcga-rna"] == {
        f"{tcga}/clinical.tsv",
        f"{tcga}/gdc_sample_sheet.tsv",
        f"{tcga}/rna",
    }
    assert raw["extract@tcga-report"] == {f"{tcga}/clinical.tsv", f"{tcga}/reports"}
    assert raw["extract@tcga-labels"] == {f"{tcga}/clinical.tsv"}
    assert raw["extract@adni-mri"] >= {"data/synthetic/adni/mri"}
    assert all(paths for paths in raw.values())


def test_lazy_and_type_checking_imports():
    """Lazy imports inside functions count; ``if TYPE_CHECKING:`` ones do not."""
    closure = import_closure("stages.train")
    assert Path("amc/training/loop.py") in closure  # imported inside train_seed()
    assert Path("stages/params.py") in closure


def test_params_deps_are_narrow(stages):
    by_name = {s["name"]: s for s in stages}
    for name, stage in by_name.items():
        if not name.startswith("extract@tcga-") or name == "extract@tcga-wsi":
            continue
        for key in stage["params"]:
            assert not "sources.tcga.wsi.batch_size".startswith(key + "."), (name, key)
            assert not key.startswith("sources.tcga.wsi"), (name, key)
    assert any(k.startswith("sources.tcga.wsi") for k in by_name["extract@tcga-wsi"]["params"])
