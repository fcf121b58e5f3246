"""The configure stage: one settings file per (dataset, method) run, read back by the run stages."""

import json

import pytest
import yaml

from amc.config import validate_params
from amc.errors import InputError
from stages import configure
from stages.params import CODE_KEY, list_runs, load_params, run_params
from stages.train import parse_run


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree() -> dict:
    return yaml.safe_load(open("params.yaml"))


def test_one_file_per_run_holding_its_resolved_settings(tmp_path):
    params = load_params()
    configure.main(["--out", str(tmp_path / "configs")])
    files = sorted((tmp_path / "configs").glob("*/*.json"))
    assert len(files) == len(list_runs(params))
    for dataset, method in list_runs(params):
        path = configure.config_path(tmp_path / "configs", dataset, method)
        assert json.loads(path.read_text()) == json.loads(
            json.dumps(run_params(params, dataset, method))
        )


def test_params_json_holds_the_data_blocks_with_defaults(tmp_path):
    """The data stages' params file: sources / split / datasets, validated, defaults filled in
    (a key params.yaml leaves out is still there, so a changed default re-runs its stages)."""
    tree = _tree()
    del tree["sources"]["tcga"]["wsi"]["batch_size"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    configure.main(["--out", str(tmp_path / "configs"), "--params", str(tmp_path / "params.yaml")])
    data = json.loads((tmp_path / "configs" / "params.json").read_text())
    assert set(data) == {"sources", "split", "datasets"}
    params = load_params(tmp_path / "params.yaml")
    assert (
        data["sources"]["tcga"]["wsi"]["batch_size"]
        == params["sources"]["tcga"]["wsi"]["batch_size"]
    )
    assert data["split"] == params["split"] and set(data["datasets"]) == set(params["datasets"])
    # only the data blocks: a model change leaves the file's bytes alone
    tree["model"]["experts"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    configure.main(["--out", str(tmp_path / "again"), "--params", str(tmp_path / "params.yaml")])
    assert (tmp_path / "again" / "params.json").read_bytes() == (
        tmp_path / "configs" / "params.json"
    ).read_bytes()


def test_files_are_byte_stable(tmp_path):
    configure.main(["--out", str(tmp_path / "a")])
    configure.main(["--out", str(tmp_path / "b")])
    for path in (tmp_path / "a").rglob("*.json"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_a_baseline_config_ignores_amc_only_keys_but_not_loss_balance():
    tree = _tree()
    dataset, baseline = next(iter(tree["datasets"])), next(iter(tree["baselines"]))
    base = configure.run_configs(validate_params(tree))
    for key, value in (
        ("model", {"experts": 3}),
        ("fusion", {"importance": "std"}),
        ("loss", {"token": 0.7}),
    ):
        changed = configure.run_configs(validate_params({**tree, key: {**tree[key], **value}}))
        assert changed[(dataset, baseline)] == base[(dataset, baseline)], key
        assert changed[(dataset, "amc")] != base[(dataset, "amc")], key
    balance = configure.run_configs(
        validate_params({**tree, "loss": {**tree["loss"], "balance": 0.5}})
    )
    assert balance[(dataset, baseline)] != base[(dataset, baseline)]
    ds = run_params(validate_params(tree), dataset, baseline)
    assert ds["model"]["hidden"] == tree["model"]["hidden"]


def test_run_stage_reads_its_config_file(tmp_path):
    params = load_params()
    dataset = next(iter(params["datasets"]))
    configure.main(["--out", str(tmp_path / "configs")])
    path = configure.config_path(tmp_path / "configs", dataset, "amc")
    settings = json.loads(path.read_text())
    settings["train"]["epochs"] = 1234  # the file, not params.yaml, is what the run uses
    path.write_text(json.dumps(settings))
    ds, _ = parse_run([dataset, "amc", "--config", str(path)], "train", None)
    assert ds["train"]["epochs"] == 1234


def test_a_config_of_another_run_or_a_missing_file_is_refused(tmp_path):
    params = load_params()
    dataset = next(iter(params["datasets"]))
    baseline = next(iter(params["baselines"]))
    configure.main(["--out", str(tmp_path / "configs")])
    other = configure.config_path(tmp_path / "configs", dataset, baseline)
    with pytest.raises(InputError, match="not of"):
        parse_run([dataset, "amc", "--config", str(other)], "train", None)
    with pytest.raises(InputError, match="not found") as err:
        parse_run([dataset, "amc", "--config", str(tmp_path / "none.json")], "train", None)
    assert "configure" in err.value.hint
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        parse_run([dataset, "amc", "--config", str(bad)], "train", None)


def test_no_partial_output_when_params_are_bad(project, tmp_path):
    (project / "params.yaml").write_text("datasets: {}\n")
    with pytest.raises(InputError):
        configure.main(["--out", "data/configs"])
    assert not (project / "data/configs").exists()


def test_run_files_carry_the_run_code_digest(tmp_path):
    """With --code, every run file carries the fingerprint's digest (so a run-code change
    rewrites every run file and DVC re-runs every run); the run stage does not see it as a
    setting. The efficiency and report files do not carry it."""
    params = load_params()
    dataset = next(iter(params["datasets"]))
    code = tmp_path / "run.json"
    code.write_text('{"amc/model/network.py": "aa"}\n')
    configure.main(["--out", str(tmp_path / "a"), "--code", str(code)])
    code.write_text('{"amc/model/network.py": "bb"}\n')
    configure.main(["--out", str(tmp_path / "b"), "--code", str(code)])
    for dataset_, method in list_runs(params):
        a = json.loads(configure.config_path(tmp_path / "a", dataset_, method).read_text())
        b = json.loads(configure.config_path(tmp_path / "b", dataset_, method).read_text())
        assert a[CODE_KEY] != b[CODE_KEY]
        assert {k: v for k, v in a.items() if k != CODE_KEY} == {
            k: v for k, v in b.items() if k != CODE_KEY
        }
    for name in ("efficiency.json", "report.json", "params.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    path = configure.config_path(tmp_path / "b", dataset, "amc")
    ds, _ = parse_run([dataset, "amc", "--config", str(path)], "train", None)
    assert CODE_KEY not in ds and ds == json.loads(json.dumps(run_params(params, dataset, "amc")))
    with pytest.raises(InputError, match="not found"):
        configure.main(["--out", str(tmp_path / "c"), "--code", str(tmp_path / "none.json")])
    assert not (tmp_path / "c").exists()


def test_efficiency_and_report_files_list_what_those_stages_read(tmp_path):
    params = load_params()
    configure.main(["--out", str(tmp_path / "configs")])
    report = json.loads((tmp_path / "configs" / "report.json").read_text())
    assert [tuple(r) for r in report["runs"]] == list_runs(params)
    assert report["seeds"] == params["split"]["seeds"]
    efficiency = json.loads((tmp_path / "configs" / "efficiency.json").read_text())["runs"]
    measured = [(r["name"], r["method"]) for r in efficiency]
    variants = {(str(v["dataset"]), name) for name, v in params["variants"].items()}
    assert measured == [run for run in list_runs(params) if run not in variants]
    assert efficiency[0] == json.loads(json.dumps(run_params(params, *measured[0])))


def test_efficiency_and_report_refuse_a_missing_or_foreign_file(tmp_path):
    from stages import efficiency, report

    for stage, flag in ((efficiency, "--configs"), (report, "--runs")):
        with pytest.raises(InputError, match="not found") as err:
            stage.main([flag, str(tmp_path / "none.json")])
        assert "configure" in err.value.hint
        other = tmp_path / "other.json"
        other.write_text('{"something": 1}')
        with pytest.raises(InputError, match="not the configure stage"):
            stage.main([flag, str(other)])
