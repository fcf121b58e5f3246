"""Variant tables (paper Tables 4-6, 9, 11), the paired comparison and Table 10's measures."""

import numpy as np
import pytest
import torch

from amc.baselines import METHODS, build_model
from amc.evaluation.comparison import (
    efficiency_tables,
    paired_comparison,
    paired_difference,
    variant_tables,
)
from amc.evaluation.efficiency import measure, random_inputs
from amc.model import AMC, AMCConfig

ALL_ON = {
    "token_fusion": True,
    "contrastive_loss": True,
    "differential_attention": True,
    "smoe": True,
}


def _run(
    method, label, f1, seeds=(0, 1, 2), family="amc", tables=(), dataset="mimic-iv", components=None
):
    return {
        "dataset": dataset,
        "method": method,
        "label": label,
        "family": family,
        "tables": list(tables),
        "task": "classification",
        "seeds": list(seeds),
        "components": components or ALL_ON,
        "metrics": {
            "f1": {"mean": sum(f1) / len(f1), "std": 0.01, "per_seed": list(f1)},
            "accuracy": {"mean": 0.7, "std": 0.02, "per_seed": [0.7] * len(f1)},
        },
    }


def test_paired_comparison_pairs_by_seed_and_counts_wins():
    amc = _run("amc", "AMC", [0.6, 0.7, 0.8])
    # same seeds in another order: seed 2 -> 0.7, seed 1 -> 0.72, seed 0 -> 0.5
    tf = _run("tf", "TF", [0.7, 0.72, 0.5], seeds=(2, 1, 0), family="tf")
    sections, rows = paired_comparison([amc, tf])
    (row,) = rows
    diffs = [0.6 - 0.5, 0.7 - 0.72, 0.8 - 0.7]
    mean = sum(diffs) / 3
    std = (sum((d - mean) ** 2 for d in diffs) / 3) ** 0.5
    assert row[:4] == ("mimic-iv", "TF", "classification", "f1_diff_vs_amc")
    assert row[4] == pytest.approx(mean) and row[5] == pytest.approx(std) and row[6] == 3
    assert "| TF | +0.060±0.057 | 2/3 | yes |" in sections[0]


def test_paired_comparison_without_common_seeds_says_so():
    sections, rows = paired_comparison(
        [_run("amc", "AMC", [0.6]), _run("tf", "TF", [0.5], seeds=(7,), family="tf")]
    )
    assert rows == [] and "| TF | n/a | 0/0 | n/a |" in sections[0]


def test_variant_tables_follow_the_papers_layouts():
    runs = [
        _run("amc", "AMC", [0.6, 0.6, 0.6]),
        _run("std", "AMC w/ STD", [0.5, 0.5, 0.5], tables=[4]),
        _run(
            "dense",
            "AMC w/o SMoE",
            [0.4, 0.4, 0.4],
            tables=[6],
            components={**ALL_ON, "smoe": False},
        ),
        _run("lab", "Lab", [0.55] * 3, tables=[11]),
        _run("note", "Note", [0.45] * 3, tables=[11]),
        _run("k", "AMC w/ paper K rule", [0.58] * 3),
    ]
    text = "\n\n".join(variant_tables(runs))
    table4 = text.split("### Table 4.")[1].split("###")[0]
    assert "| AMC |" in table4 and "| AMC w/ STD |" in table4 and "SMoE" not in table4
    table6 = text.split("### Table 6.")[1].split("###")[0]
    assert "| AMC w/o SMoE | ✓ | ✓ | ✓ | – |" in table6
    assert "| AMC | ✓ | ✓ | ✓ | ✓ | 70.00±2.00 | n/a | n/a | **60.00±1.00** |" in table6
    table11 = text.split("### Table 11.")[1].split("###")[0]
    assert (
        "| Metric | Lab | Note |" in table11
        and "| F1 (%) | **55.00±1.00** | 45.00±1.00 |" in table11
    )
    assert "### AMC variants (mimic-iv)" in text and "AMC w/ paper K rule" in text


def test_efficiency_measures_a_model():
    config = AMCConfig(
        modalities={"a": 12, "b": (8, 8, 8)}, hidden=16, heads=2, tokens=4, experts=2
    )
    torch.manual_seed(0)
    model = AMC(config)
    small = measure(model, random_inputs(config.modalities, {}, batch=4), steps=2)
    assert small["params"] == sum(p.numel() for p in model.parameters())
    assert small["gflops"] > 0 and small["step_ms"] > 0
    assert small["peak_mb"] * 2**20 > 4 * 4 * small["params"]  # weights, grads, Adam + activations
    wide = AMC(AMCConfig(**{**config.__dict__, "tokens": 8}))
    bigger = measure(wide, random_inputs(config.modalities, {}, batch=4), steps=2)
    assert bigger["gflops"] > small["gflops"]  # FLOPs per sample grow with the token count
    text = efficiency_tables({"toy": {"AMC": small}})[0]
    assert "### Table 10. Efficiency (toy)" in text and "| Parameters (M) |" in text


@pytest.mark.parametrize("method", sorted(METHODS))
def test_efficiency_measures_every_compared_method(method):
    """Table 10 runs every method through the FLOP counter (MUSE passes a parameter to a
    submodule, which the counter's module tracker could not hook under no_grad)."""
    config = AMCConfig(modalities={"a": 12, "b": 10}, hidden=16, heads=2, tokens=4, experts=2)
    torch.manual_seed(0)
    model = build_model(method, config, {})
    stats = measure(model, random_inputs(config.modalities, {}, batch=4), steps=1)
    assert stats["gflops"] > 0 and stats["params"] == sum(p.numel() for p in model.parameters())


def test_paired_difference_pairs_by_seed():
    got = paired_difference({0: 0.8, 1: 0.7, 2: 0.9, 5: 0.1}, {0: 0.7, 1: 0.6, 2: 0.7, 3: 0.5})
    assert got["n_seeds"] == 3 and got["wins"] == 3  # seeds 3 and 5 unpaired: left out
    assert got["mean"] == pytest.approx((0.1 + 0.1 + 0.2) / 3)
    assert got["std"] == pytest.approx(np.std([0.1, 0.1, 0.2]))
    assert got["beyond_std"]
    assert not paired_difference({0: 0.8, 1: 0.6}, {0: 0.7, 1: 0.7})["beyond_std"]
    assert paired_difference({0: 0.8}, {1: 0.7}) is None
    assert paired_difference({0: float("nan")}, {0: 0.7}) is None
