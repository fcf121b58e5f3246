"""benchmarks/side_by_side.py: the alternating two-tree protocol on a tiny shape."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import benchmark_module

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "batch": 4,
    "tokens": 2,
    "hidden": 8,
    "heads": 2,
    "layers": 2,
    "encoder_layers": 1,
    "experts": 2,
    "top_k": 1,
    "features": [5, 6],
    "optimizer": "adam",
}


@pytest.fixture(scope="module")
def sbs():
    with benchmark_module("side_by_side") as module:
        yield module


def test_compare_alternates_two_workers_and_reports_ratio(sbs, capsys):
    request = {"warmup": 1, "threads": 1, "device": "cpu", "seed": 0, "clock": "cpu"}
    rows = sbs.compare(ROOT, ROOT, {"tiny": TINY}, rounds=2, steps=2, **request)
    (row,) = rows
    assert row["shape"] == "tiny" and row["rounds"] == 2 and row["steps_per_round"] == 2
    assert row["base_steps_per_s"] > 0 and row["new_steps_per_s"] > 0
    assert row["speedup_min"] <= row["speedup"] <= row["speedup_max"]
    assert "| tiny | 4 | 2 | 2 |" in capsys.readouterr().out
    # each tree's own optimizer options (this tree: the fused kernel), or torch's defaults
    assert row["base_fused_optimizer"] is True and row["new_fused_optimizer"] is True
    default = {"tiny": {**TINY, "tree_optimizer": False}}
    (row,) = sbs.compare(ROOT, ROOT, default, rounds=1, steps=1, **request)
    assert row["base_fused_optimizer"] is False and row["new_fused_optimizer"] is False


def test_revision_tree_is_a_temporary_worktree_of_the_revision(sbs):
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with sbs.revision_tree(ROOT, "HEAD") as tree:
        assert (tree / "amc" / "model" / "network.py").exists()
        inside = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert inside == head
    assert not tree.exists()
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert str(tree) not in listed


def test_shapes_cover_reference_and_table7(sbs):
    table = sbs.shapes()
    assert table["reference"]["features"] == [768, 768, 790]
    assert table["reference"]["encoder_layers"] == 4 and table["reference"]["tokens"] == 32
    assert {
        (s["hidden"], s["batch"], s["layers"]) for n, s in table.items() if n != "reference"
    } == {
        (64, 32, 2),
        (64, 64, 2),
        (128, 64, 2),
        (128, 128, 4),
    }
    with pytest.raises(ValueError, match="unknown shapes"):
        sbs.shapes(["nope"])
