"""dvc.yaml's method axis: which stages a param reaches (what `dvc exp run -S` re-runs)."""

import pytest
import yaml

from stages.params import list_runs, load_params


@pytest.fixture(scope="module")
def param_deps():
    from dvc.repo import Repo

    with Repo(".") as repo:
        return {
            stage.name: [key for dep in stage.deps for key in (getattr(dep, "params", None) or [])]
            for stage in repo.index.stages
        }


def _reached(param_deps, key):
    """Stages that re-run when params key ``key`` changes (a dep on it or on a parent)."""
    parts = key.split(".")
    parents = {".".join(parts[: i + 1]) for i in range(len(parts))}
    return {name for name, keys in param_deps.items() if parents & set(keys)}


def test_one_stage_per_run_found_from_params(param_deps):
    params = load_params()
    expected = set()
    for dataset, method in list_runs(params):
        if method == "amc":
            expected.add(f"run@{dataset}")
        elif method in params["baselines"]:
            expected.add(f"run-baseline@{dataset}-{method}")
        else:
            expected.add(f"run-variant@{method}")
    assert {name for name in param_deps if name.startswith("run")} == expected


def test_model_experts_reaches_amc_and_its_variants_only(param_deps):
    params = yaml.safe_load(open("params.yaml"))
    reached = _reached(param_deps, "model.experts")
    amc_family = {f"run@{d}" for d in params["datasets"]} | {
        f"run-variant@{v}" for v in params["variants"]
    }
    assert reached - {"efficiency"} == amc_family


def test_a_baseline_param_reaches_that_baseline_only(param_deps):
    params = yaml.safe_load(open("params.yaml"))
    name = next(iter(params["baselines"]))
    reached = _reached(param_deps, f"baselines.{name}.options.x")
    runs = {f"run-baseline@{d}-{name}" for d in params["datasets"]}
    assert reached - {"efficiency", "report"} == runs
