"""Smoke test of benchmarks/model_throughput.py: a tiny grid in-process, plus its helpers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from amc.model import AMC, AMCConfig
from tests.helpers import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("model_throughput") as module:
        yield module


def test_quick_run_writes_complete_json(bench, tmp_path, capsys):
    out = tmp_path / "results" / "throughput.json"
    threads = torch.get_num_threads()
    argv = ["--quick", "--device", "cpu", "--datasets", "adni", "--num-modalities", "2", "3"]
    argv += ["--num-tokens", "8", "--repeats", "2", "--out", str(out)]
    report = bench.main(argv)
    assert torch.get_num_threads() == threads  # main restores the caller's thread count
    printed = capsys.readouterr().out
    assert "torch.set_num_threads(1)" in printed
    assert "| adni | 32 | 3 | 8 |" in printed

    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(report))
    assert set(data) == {"meta", "results", "fusion", "growth", "summary"}
    assert data["meta"]["threads"] == 1 and data["meta"]["device"] == "cpu"
    assert data["meta"]["quick"] is True

    rows = data["results"]
    assert {(r["m"], r["design"]) for r in rows} == {
        (m, d) for m in (2, 3) for d in ("amc", "amc_core", "concat")
    }
    for r in rows:
        assert "error" not in r, r
        assert r["dataset"] == "adni" and r["batch"] == 32 and r["n"] == 8
        for key in ("step_s", "steps_per_s", "peak_mem_bytes", "peak_mem_mib", "params"):
            assert r[key] > 0, (key, r)
        assert math.isclose(r["steps_per_s"] * r["step_s"], 1.0)
        assert 1 <= r["timed_steps"] <= 2
        # At least parameters + AdamW state (3 copies of the float32 weights) are resident.
        assert r["peak_mem_bytes"] > 3 * 4 * r["params"]
    by = {(r["m"], r["design"]): r for r in rows}
    assert by[(3, "concat")]["attn_flops"] == 3 * by[(3, "amc")]["attn_flops"] == (3 * 8) ** 2 * 64

    assert len(data["fusion"]) == 2
    for f in data["fusion"]:
        assert f["fusion_s"] > 0 and f["block_s"] > 0
        assert math.isclose(f["ratio"], f["fusion_s"] / f["block_s"])
    assert {(g["design"], g["points"]) for g in data["growth"]} == {
        ("amc", 2),
        ("amc_core", 2),
        ("concat", 2),
    }
    assert all(math.isfinite(g["exponent"]) for g in data["growth"])
    assert data["summary"]["fusion_ratio_max"] >= data["summary"]["fusion_ratio_median"] > 0


def test_attention_flops_and_growth_exponent(bench):
    for m in (2, 3, 8):
        amc = bench.attention_flops("amc", m, 16, 64)
        assert amc == m * 16**2 * 64
        assert bench.attention_flops("concat", m, 16, 64) == m * amc
    sizes = [2, 3, 4, 8]
    assert bench.growth_exponent(sizes, [0.5 * s for s in sizes]) == pytest.approx(1.0)
    assert bench.growth_exponent(sizes, [0.1 * s**2 for s in sizes]) == pytest.approx(2.0)
    assert math.isnan(bench.growth_exponent([4], [1.0]))
    with pytest.raises(ValueError, match="design"):
        bench.attention_flops("other", 2, 16, 64)


def test_concat_baseline_attends_over_all_modalities(bench):
    model = bench.build_model("concat", num_modalities=3, num_tokens=4, features=10, dropout=0.0)
    seen = []
    model.blocks[0].register_forward_hook(lambda mod, args, out: seen.append(out[1].shape))
    inputs = {f"m{i}": torch.randn(5, 10) for i in range(3)}
    logits = model(inputs)
    assert logits.shape == (5, 2)
    assert seen == [torch.Size([5, 12, 12])]  # one (M*N) x (M*N) map per sample
    # Cross-modal attention: changing one modality moves every token of the sequence.
    inputs2 = dict(inputs, m0=inputs["m0"] + 1.0)
    assert not torch.allclose(model(inputs2), logits)


def test_cpu_peak_memory_counts_live_tensors(bench):
    def fn():
        a = torch.empty(1_000_000)  # 4 MB
        b = torch.empty(1_000_000)  # both alive: 8 MB
        del a, b
        c = torch.empty(500_000)  # freed before: peak stays 8 MB
        del c

    resident = [torch.empty(250_000)]  # 1 MB
    peak = bench.peak_memory(fn, torch.device("cpu"), resident)
    assert 9_000_000 <= peak < 9_100_000


def test_amc_core_patch_zeroes_contrastive_losses_only_inside(bench):
    torch.manual_seed(0)
    model = AMC(AMCConfig(modalities={"a": 8, "b": 8}, hidden=16, heads=2, tokens=4, experts=2))
    inputs = {"a": torch.randn(4, 8), "b": torch.randn(4, 8)}
    with bench._without_contrastive_losses():
        aux = {k: v.detach() for k, v in model(inputs).aux_losses.items()}
    assert float(aux["instance"]) == 0.0 and float(aux["token"]) == 0.0
    aux = {k: v.detach() for k, v in model(inputs).aux_losses.items()}
    assert float(aux["instance"]) > 0.0 and float(aux["token"]) > 0.0


def test_token_pairs_mode_measures_both_schemes(bench, tmp_path, capsys):
    out = tmp_path / "pairs.json"
    argv = ["--token-pairs", "all", "ring", "--device", "cpu", "--datasets", "adni"]
    argv += ["--num-modalities", "2", "4", "--num-tokens", "4", "--repeats", "1", "--warmup", "0"]
    report = bench.main(argv + ["--budget", "0.1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    pairs = {(r["m"], r["scheme"]): r["pairs"] for r in report["results"]}
    assert pairs == {(2, "all"): 1, (2, "ring"): 1, (4, "all"): 6, (4, "ring"): 4}
    assert all(r["step_s"] > 0 and r["peak_mem_bytes"] > 0 for r in report["results"])
    assert {g["scheme"] for g in report["growth"]} == {"all", "ring"}
    assert "| adni | 32 | 4 | 4 | 6 |" in capsys.readouterr().out
