"""benchmarks/fusion_defaults.py: overrides, completion of older configs, the paired table."""

from __future__ import annotations

import json

import pytest

from tests.helpers import benchmark_module


@pytest.fixture(scope="module")
def fd():
    with benchmark_module("fusion_defaults") as module:
        yield module


def test_overrides_set_existing_dotted_keys_as_yaml_and_refuse_unknown_ones(fd):
    config = {"fusion": {"pooling": "concat"}, "loss": {"instance": 0.1}}
    out = fd.apply_overrides(config, ["fusion.pooling=deficit", "loss.instance=1.0"])
    assert out == {"fusion": {"pooling": "deficit"}, "loss": {"instance": 1.0}}
    assert config["fusion"]["pooling"] == "concat"  # the input is not modified
    with pytest.raises(SystemExit, match="fusion.polling"):
        fd.apply_overrides(config, ["fusion.polling=deficit"])
    with pytest.raises(SystemExit, match="key=value"):
        fd.apply_overrides(config, ["fusion.pooling"])


def test_fill_missing_adds_newer_keys_and_keeps_the_workspace_values(fd):
    config = {"loss": {"instance": 0.1}, "name": "adni"}
    current = {"loss": {"instance": 0.5, "modality_heads_weights": "uniform"}, "name": "x"}
    assert fd.fill_missing(config, current) == ["loss.modality_heads_weights"]
    expected = {"loss": {"instance": 0.1, "modality_heads_weights": "uniform"}, "name": "adni"}
    assert config == expected


def _metrics(values: dict[str, list[float]]) -> dict:
    return {k: {"mean": sum(v) / len(v), "std": 0.0, "per_seed": v} for k, v in values.items()}


def test_compare_pairs_the_variant_with_the_workspace_run_seed_by_seed(fd, tmp_path):
    (tmp_path / "data/configs/toy").mkdir(parents=True)
    (tmp_path / "reports/metrics/toy").mkdir(parents=True)
    config = {"task": "survival", "split": {"seeds": [3, 7, 9]}}
    (tmp_path / "data/configs/toy/amc.json").write_text(json.dumps(config))
    default = _metrics({"c_index": [0.60, 0.70, 0.50]})
    (tmp_path / "reports/metrics/toy/amc.json").write_text(json.dumps(default))
    variant = tmp_path / "variant.json"
    variant.write_text(json.dumps(_metrics({"c_index": [0.65, 0.60, 0.60]})))
    rows, seed_rows = fd.compare(tmp_path, "toy", variant)
    assert len(rows) == 1 and rows[0].startswith("| toy | c_index |")
    assert "+0.017 ± 0.085 (2/3)" in rows[0]  # differences +0.05, -0.10, +0.10
    assert [r[2] for r in seed_rows] == [3, 7, 9]
    assert seed_rows[1][5] == pytest.approx(-0.10)
