"""dvc.yaml's method axis: which stages a params change re-runs (what `dvc exp run -S` re-runs).

Run stages declare no params: each depends on its own file of the configure stage
(data/configs/<dataset>/<method>.json), so a params change re-runs the runs whose config text
changes, plus the few stages that declare the key itself.
"""

import copy

import pytest
import yaml

from amc.config import validate_params
from stages.configure import run_configs
from stages.params import list_runs, load_params


@pytest.fixture(scope="module")
def stages():
    from dvc.repo import Repo

    with Repo(".") as repo:
        return {
            stage.name: {
                "params": [k for dep in stage.deps for k in (getattr(dep, "params", None) or [])],
                "deps": [dep.def_path for dep in stage.deps],
            }
            for stage in repo.index.stages
        }


def _stage_of(params: dict, dataset: str, method: str) -> str:
    if method == "amc":
        return f"run@{dataset}"
    if method in params["baselines"]:
        return f"run-baseline@{dataset}-{method}"
    return f"run-variant@{method}"


def _set(tree: dict, key: str, value) -> dict:
    tree = copy.deepcopy(tree)
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return tree


def _reached(stages: dict, key: str, value) -> set[str]:
    """Stages that re-run when params key ``key`` is set to ``value``: those declaring the key
    (or a parent), and the run stages whose config file changes."""
    parts = key.split(".")
    parents = {".".join(parts[: i + 1]) for i in range(len(parts))}
    declared = {name for name, s in stages.items() if parents & set(s["params"])}
    tree = yaml.safe_load(open("params.yaml"))
    params = validate_params(tree)
    before = run_configs(params)
    after = run_configs(validate_params(_set(tree, key, value)))
    changed = {_stage_of(params, *run) for run in before if before[run] != after.get(run)}
    return declared | changed


def test_one_stage_per_run_found_from_params(stages):
    params = load_params()
    expected = {_stage_of(params, dataset, method) for dataset, method in list_runs(params)}
    assert {name for name in stages if name.startswith("run")} == expected


def test_each_run_stage_depends_on_its_own_config_and_no_params(stages):
    params = load_params()
    for dataset, method in list_runs(params):
        stage = stages[_stage_of(params, dataset, method)]
        assert f"data/configs/{dataset}/{method}.json" in stage["deps"], (dataset, method)
        assert stage["params"] == [], (dataset, method)


def test_model_experts_reaches_amc_and_its_variants_only(stages):
    params = yaml.safe_load(open("params.yaml"))
    reached = _reached(stages, "model.experts", 16)
    amc_family = {f"run@{d}" for d in params["datasets"]} | {
        f"run-variant@{v}" for v in params["variants"]
    }
    assert reached - {"configure", "efficiency"} == amc_family


def test_a_baseline_param_reaches_that_baseline_only(stages):
    params = yaml.safe_load(open("params.yaml"))
    name = next(iter(params["baselines"]))
    reached = _reached(stages, f"baselines.{name}.options.x", 1)
    runs = {f"run-baseline@{d}-{name}" for d in params["datasets"]}
    assert reached - {"configure", "efficiency", "report"} == runs


def test_loss_balance_reaches_the_baselines_that_weight_a_balance_loss(stages):
    """FuseMoE's and LiMoE's load-balance losses are weighted by loss.balance in training."""
    params = yaml.safe_load(open("params.yaml"))
    reached = _reached(stages, "loss.balance", 0.5)
    for dataset in params["datasets"]:
        for name, entry in params["baselines"].items():
            if entry["family"] in ("fusemoe", "limoe"):
                assert f"run-baseline@{dataset}-{name}" in reached
    assert not any(s.startswith("run-baseline@") for s in _reached(stages, "loss.token", 0.5))


# DVC's own graph code trips a pygtrie deprecation (not ours to fix)
@pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")
def test_dvc_repro_at_the_root_reaches_the_run_stages_of_pipelines():
    """The run stages live in pipelines/*/dvc.yaml (small lock files); a plain `dvc repro` only
    collects the root dvc.yaml's stages plus everything upstream of them, so every stage of the
    sub-pipelines must be upstream of a root stage (the report), or `dvc repro` would skip it."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(".") as repo:
        graph, stages = repo.index.graph, repo.index.stages
        root = [s for s in stages if s.path_in_repo == "dvc.yaml"]
        elsewhere = {s for s in stages if s.path_in_repo != "dvc.yaml"}
        # DVC's graph points from a stage to the stages it depends on
        upstream = set().union(*(nx.descendants(graph, s) for s in root))
        names = {s.addressing for s in elsewhere}
        assert elsewhere and {s.path_in_repo for s in elsewhere} == {
            "pipelines/amc/dvc.yaml",
            "pipelines/baselines/dvc.yaml",
        }, names
        assert not {s.addressing for s in elsewhere - upstream}
