"""Tables 1-3 from fake results; figures written as valid PNGs, atomically."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from amc.errors import InputError
from amc.evaluation.figures import (
    importance_plot_data,
    plot_importance_distributions,
    plot_kaplan_meier,
    plot_kaplan_meier_grid,
    plot_replacement_distributions,
)
from amc.evaluation.metrics import aggregate_seeds, to_jsonable
from amc.evaluation.tables import LONG_COLUMNS, render_tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _agg(**values: list[float]) -> dict:
    n = len(next(iter(values.values())))
    return aggregate_seeds([{k: v[i] for k, v in values.items()} for i in range(n)])


def _surv(c: list[float]) -> dict:
    return _agg(c_index=c, c_index_ipcw=[math.nan] * len(c))


def _cls(acc, rec, prec, f1, auroc) -> dict:
    return _agg(accuracy=acc, recall=rec, precision=prec, f1=f1, auroc=auroc)


def _table(md: str, title: str) -> list[list[str]]:
    """Rows (header first) of the Markdown table under the heading containing ``title``."""
    block = md.split(title, 1)[1].split("###", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|") and "---" not in ln]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


@pytest.fixture
def results() -> list[dict]:
    out = []
    tcga = [
        ("tcga-ucec", 0.8, 0.7, 0.6),
        ("tcga-luad", 0.6, 0.65, 0.5),
        ("tcga-blca", 0.7, 0.5, 0.55),
    ]
    for ds, a, b, c in tcga:
        out.append(
            {
                "dataset": ds,
                "method": "AMC",
                "task": "survival",
                "metrics": _surv([a - 0.01, a + 0.01]),
            }
        )
        out.append(
            {
                "dataset": ds,
                "method": "AMC w/o Fusion",
                "task": "survival",
                "metrics": _surv([b, b]),
            }
        )
        out.append({"dataset": ds, "method": "MulT", "task": "survival", "metrics": _surv([c])})
    out.append(
        {
            "dataset": "mimic-iv",
            "method": "AMC",
            "task": "classification",
            "metrics": _cls([0.68, 0.70], [0.6, 0.62], [0.59, 0.6], [0.59, 0.61], [0.8, 0.82]),
        }
    )
    out.append(
        {
            "dataset": "mimic-iv",
            "method": "AMC w/ STD",
            "task": "classification",
            "metrics": _cls([0.7, 0.7], [0.5, 0.5], [0.4, 0.4], [0.45, 0.45], [0.6, 0.6]),
        }
    )
    out.append(
        {
            "dataset": "adni",
            "method": "AMC",
            "task": "classification",
            "metrics": _cls([0.5], [0.5], [0.5], [0.5], [0.7]),
        }
    )
    out.append(
        {
            "dataset": "my-cohort",
            "method": "AMC",
            "task": "classification",
            "metrics": _cls([0.9, 0.8], [0.9, 0.8], [0.9, 0.8], [0.9, 0.8], [0.95, 0.9]),
            "chance": {"prevalence": [0.25, 0.75]},
        }
    )
    return out


def test_table1_tcga_layout(results):
    md, _ = render_tables(results)
    rows = _table(md, "Table 1. ")
    assert rows[0] == ["Cancer Type", "AMC", "AMC w/o Fusion", "MulT"]
    assert [r[0] for r in rows[1:]] == ["UCEC", "LUAD", "BLCA", "Average"]  # paper order
    ucec = rows[1]
    assert ucec[1:] == ["**0.800±0.010**", "<u>0.700±0.000</u>", "0.600±0.000"]
    assert rows[2][1] == "<u>0.600±0.010</u>" and rows[2][2] == "**0.650±0.000**"
    avg = rows[-1]
    assert avg[1] == "**0.700**"  # (0.8 + 0.6 + 0.7) / 3, mean only as in the paper
    assert avg[2] == "<u>0.617</u>" and avg[3] == "0.550"
    assert "Table 1b" not in md  # IPCW all NaN -> no IPCW table


def test_table2_and_3_layout_and_chance(results):
    md, _ = render_tables(results)
    t3 = _table(md, "Table 3. Performance on MIMIC-IV")
    assert t3[0] == ["Method", "Acc (%)", "Recall (%)", "Precision (%)", "F1 (%)"]
    assert [r[0] for r in t3[1:]] == ["AMC", "AMC w/ STD"]
    # two methods: best in bold, no underline (second best = worst)
    assert t3[1][1] == "69.00±1.00" and t3[2][1] == "**70.00±0.00**"
    assert t3[1][4] == "**60.00±1.00**"
    t2 = _table(md, "Table 2. Performance on ADNI")
    assert t2[1] == ["AMC", "50.00±0.00", "50.00±0.00", "50.00±0.00", "50.00±0.00"]
    assert md.index("Table 1.") < md.index("Table 2.") < md.index("Table 3.")
    # vs chance: mimic-iv binary -> chance F1 50%, adni 3 classes -> 33.33%
    assert "AMC: AUROC 0.810 (+0.310 vs 0.500), macro-F1 60.00% (+10.00 pts vs 50.00%)" in md
    assert "macro-F1 50.00% (+16.67 pts vs 33.33%)" in md


def test_generic_table_and_long_frame(results):
    md, long = render_tables(results)
    generic = _table(md, "### my-cohort (classification)")
    assert generic[0][-1] == "AUROC" and generic[1][-1] == "0.925±0.025"
    assert "macro-F1 85.00% (+35.00 pts vs 50.00%)" in md  # prevalence of 2 classes
    assert list(long.columns) == LONG_COLUMNS
    row = long[(long.dataset == "tcga-ucec") & (long.method == "AMC") & (long.metric == "c_index")]
    assert row["mean"].item() == pytest.approx(0.8) and row["n_seeds"].item() == 2
    avg = long[(long.dataset == "tcga-average") & (long.method == "AMC w/o Fusion")]
    assert avg["mean"].item() == pytest.approx((0.7 + 0.65 + 0.5) / 3)
    gains = long[long.metric == "auroc_gain_vs_chance"]
    assert set(gains.dataset) == {"mimic-iv", "adni", "my-cohort"}
    assert long[long.metric == "c_index_ipcw"]["n_seeds"].eq(0).all()


def test_missing_datasets_and_json_roundtrip():
    import json

    res = [
        {
            "dataset": "mimic-iv",
            "method": "AMC",
            "task": "classification",
            "metrics": json.loads(
                json.dumps(to_jsonable(_cls([0.7], [0.6], [0.6], [0.6], [math.nan])))
            ),
        }
    ]
    md, long = render_tables(res)
    assert "Table 3." in md and "Table 1." not in md and "Table 2." not in md
    assert "AUROC n/a" in md
    md_empty, long_empty = render_tables([])
    assert "No results." in md_empty and long_empty.empty


def test_table1_partial_average_and_ipcw():
    res = [
        {
            "dataset": "tcga-ucec",
            "method": "A",
            "task": "survival",
            "metrics": _agg(c_index=[0.7, 0.8], c_index_ipcw=[0.6, 0.7]),
        },
        {
            "dataset": "tcga-lgg",
            "method": "A",
            "task": "survival",
            "metrics": _agg(c_index=[0.6, 0.6], c_index_ipcw=[0.5, 0.5]),
        },
        {
            "dataset": "tcga-ucec",
            "method": "B",
            "task": "survival",
            "metrics": _agg(c_index=[0.5, 0.5], c_index_ipcw=[0.5, 0.5]),
        },
    ]
    md, _ = render_tables(res)
    rows = _table(md, "Table 1. ")
    assert rows[2] == ["LGG", "0.600±0.000", "n/a"]
    assert rows[-1][1:] == ["0.675", "0.500*"]  # partial average: marked, not ranked
    assert "averaged over the cancer types" in md
    ipcw = _table(md, "Table 1b.")
    assert ipcw[1][1] == "**0.650±0.050**"


def test_render_tables_errors(results):
    with pytest.raises(InputError, match="two results for dataset 'adni', method 'AMC'"):
        render_tables([*results, results[-2]])
    with pytest.raises(InputError, match="'task'"):
        render_tables([{"dataset": "x", "method": "m", "metrics": {}}])
    with pytest.raises(InputError, match="regression"):
        render_tables([{"dataset": "x", "method": "m", "task": "regression", "metrics": {}}])


# ------------------------------------------------------------------------------- figures
def _pred(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    imp = rng.dirichlet([2, 3, 5], size=n)
    return pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(n)],
            "seed": 0,
            "split": np.where(np.arange(n) % 3 == 0, "test", "train"),
            "label": rng.integers(0, 2, n).astype(str),
            "prob_0": 0.5,
            "prob_1": 0.5,
            "importance_lab": imp[:, 0],
            "importance_note": imp[:, 1],
            "importance_code": imp[:, 2],
            "replaced_lab": rng.integers(0, 8, n),
            "replaced_note": rng.integers(0, 8, n),
            "replaced_code": rng.integers(0, 8, n),
        }
    )


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG_MAGIC


def test_histograms_written(tmp_path):
    pred = _pred()
    mods = ["lab", "note", "code"]
    out1 = tmp_path / "plots" / "importance.png"  # parent folder does not exist yet
    out2 = tmp_path / "replaced.png"
    plot_importance_distributions(pred, mods, out1)
    plot_replacement_distributions(pred, mods, out2)
    assert _is_png(out1) and _is_png(out2)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "importance.png",
        "plots",
        "replaced.png",
    ]


def test_histogram_missing_column_leaves_no_file(tmp_path):
    pred = _pred().drop(columns=["importance_note"])
    out = tmp_path / "importance.png"
    with pytest.raises(InputError, match="importance_note"):
        plot_importance_distributions(pred, ["lab", "note"], out)
    assert list(tmp_path.iterdir()) == []


def test_no_partial_file_when_savefig_fails(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    out = tmp_path / "replaced.png"
    with pytest.raises(RuntimeError):
        plot_replacement_distributions(_pred(), ["lab"], out)
    assert list(tmp_path.iterdir()) == []


def test_histogram_no_test_rows(tmp_path):
    pred = _pred()
    pred["split"] = "train"
    with pytest.raises(InputError, match="no test rows"):
        plot_importance_distributions(pred, ["lab"], tmp_path / "x.png")


def test_importance_plot_data_uses_test_rows():
    pred = _pred(30)
    long = importance_plot_data(pred, ["lab", "code"])
    assert list(long.columns) == ["patient_id", "seed", "modality", "importance"]
    assert len(long) == 2 * (pred["split"] == "test").sum()
    p0 = long[(long.patient_id == "p0") & (long.modality == "code")]["importance"].item()
    assert p0 == pytest.approx(pred.loc[0, "importance_code"])


def test_kaplan_meier(tmp_path):
    rng = np.random.default_rng(1)
    risk = rng.normal(size=80)
    time = rng.exponential(np.exp(-1.5 * risk))
    event = rng.random(80) < 0.8
    out = tmp_path / "km.png"
    p = plot_kaplan_meier(time, event, risk, out, "tcga-ucec test")
    assert _is_png(out)
    assert 0.0 <= p < 0.05  # strong signal: groups differ
    p_same = plot_kaplan_meier(time, event, np.zeros(80), tmp_path / "km2.png", "flat")
    assert math.isnan(p_same) and _is_png(tmp_path / "km2.png")
    with pytest.raises(InputError, match="risk holds NaN"):
        plot_kaplan_meier(time, event, np.full(80, np.nan), tmp_path / "km3.png", "bad")
    assert not (tmp_path / "km3.png").exists()


def test_kaplan_meier_grid_draws_one_panel_per_method(tmp_path):
    rng = np.random.default_rng(1)
    risk = rng.normal(size=80)
    time = rng.exponential(np.exp(-1.5 * risk))
    event = rng.random(80) < 0.8
    groups = {
        "AMC": (time, event, risk),
        "Random": (time, event, rng.normal(size=80)),
        "Flat": (time, event, np.zeros(80)),
    }
    p = plot_kaplan_meier_grid(groups, tmp_path / "grid.png", "tcga-ucec")
    assert list(p) == ["AMC", "Random", "Flat"]
    assert p["AMC"] < 0.05 and p["Random"] > p["AMC"] and math.isnan(p["Flat"])
    single = plot_kaplan_meier(time, event, risk, tmp_path / "one.png", "AMC")
    assert single == pytest.approx(p["AMC"])  # the same panel, alone
    assert _is_png(tmp_path / "grid.png")
    groups["Broken"] = (time, event, np.full(80, np.nan))
    with pytest.raises(InputError, match=r"\(Broken\): risk holds NaN"):
        plot_kaplan_meier_grid(groups, tmp_path / "bad.png", "tcga-ucec")
    assert not (tmp_path / "bad.png").exists()


def test_tables_have_one_title_and_the_callers_note(results):
    md, _ = render_tables(results, note="Made from seeds [0, 1].")
    assert md.count("# Results") == 1
    assert md.startswith("# Results\n\nMade from seeds [0, 1]. Mean±std over seeds")
