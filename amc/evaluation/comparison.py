"""The comparison tables beyond Tables 1-3: AMC variants (paper Tables 4-6, 9, 11), efficiency
(Table 10) and the paired comparison of AMC with every other method on the same seeds.

A *run* is one (dataset, method) result: ``{"dataset", "method", "label", "family", "tables",
"task", "seeds", "metrics", "components"}`` where ``metrics`` is the ``aggregate_seeds`` output
(``per_seed`` in the order of ``seeds``) and ``components`` says which of AMC's four modules are
on (Table 6). The AMC headline run of a dataset has ``method == "amc"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from amc.evaluation.tables import _CLS_COLUMNS, _cls_rows, _highlight, _md_table, _num

__all__ = [
    "efficiency_tables",
    "paired_comparison",
    "paired_difference",
    "primary_metric",
    "variant_tables",
]

_TITLES = {
    4: "Table 4. Different modality importance calculation methods",
    5: "Table 5. Different token score assignment methods",
    6: "Table 6. The ablation study",
    9: "Table 9. AMC with missing modalities",
}
_COMPONENTS = (
    ("token_fusion", "Token Fusion"),
    ("contrastive_loss", "Contrastive Loss"),
    ("differential_attention", "Differential Attention"),
    ("smoe", "SMoE"),
)


def primary_metric(task: str) -> str:
    """The metric a paired comparison uses: macro-F1 (classification) or Harrell's c-index."""
    return "f1" if task == "classification" else "c_index"


def _columns(task: str) -> list[tuple[str, str, bool]]:
    if task == "classification":
        return [(k, f"{label} (%)", True) for k, label in _CLS_COLUMNS]
    return [("c_index", "c-index", False), ("c_index_ipcw", "IPCW c-index", False)]


def _result(run: Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    return {**run, "method": label or run["label"]}


def variant_tables(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown sections: for each paper table a variant names (4, 5, 6, 9, 11) and each
    dataset, AMC's headline row next to its variants; variants without a table go to an
    "AMC variants" table per dataset."""
    headline = {r["dataset"]: r for r in runs if r["method"] == "amc"}
    variants = [r for r in runs if r["family"] == "amc" and r["method"] != "amc"]
    sections = []
    datasets = list(dict.fromkeys(r["dataset"] for r in variants))
    for number in sorted({t for r in variants for t in r.get("tables") or []}):
        for dataset in datasets:
            part = [r for r in variants if r["dataset"] == dataset and number in r["tables"]]
            if not part:
                continue
            if number == 11:
                sections.append(_single_modality_table(dataset, part))
                continue
            rows = ([headline[dataset]] if dataset in headline else []) + part
            title = f"{_TITLES.get(number, f'Table {number}')} ({dataset})"
            if number == 6:
                sections.append(_ablation_table(title, rows))
            else:
                sections.append(_plain_table(title, rows))
    for dataset in datasets:
        part = [r for r in variants if r["dataset"] == dataset and not r.get("tables")]
        if part:
            rows = ([headline[dataset]] if dataset in headline else []) + part
            sections.append(_plain_table(f"AMC variants ({dataset})", rows))
    return sections


def _plain_table(title: str, rows: list[Mapping[str, Any]]) -> str:
    cols = _columns(rows[0]["task"])
    header = ["Method", *(label for _, label, _ in cols)]
    body = _cls_rows([_result(r) for r in rows], cols)
    return f"### {title}\n\n" + _md_table(header, body)


def _ablation_table(title: str, rows: list[Mapping[str, Any]]) -> str:
    cols = _columns(rows[0]["task"])
    body = _cls_rows([_result(r) for r in rows], cols)
    marks = [
        ["✓" if (r.get("components") or {}).get(key) else "–" for key, _ in _COMPONENTS]
        for r in rows
    ]
    header = ["Method", *(name for _, name in _COMPONENTS), *(label for _, label, _ in cols)]
    return f"### {title}\n\n" + _md_table(header, [[b[0], *m, *b[1:]] for b, m in zip(body, marks)])


def _single_modality_table(dataset: str, rows: list[Mapping[str, Any]]) -> str:
    """Table 11 layout: columns = the modality used alone, rows = metrics."""
    cols = _columns(rows[0]["task"])
    body = []
    for key, label, percent in cols:
        stats = [_stat(r["metrics"], key) for r in rows]
        cells = [_fmt(mu, sd, percent) for mu, sd in stats]
        body.append([label, *_highlight(cells, [mu for mu, _ in stats])])
    header = ["Metric", *(str(r["label"]) for r in rows)]
    title = f"Table 11. Each modality alone, same AMC backbone ({dataset})"
    return f"### {title}\n\n" + _md_table(header, body)


def _stat(metrics: Mapping[str, Any], key: str) -> tuple[float, float]:
    entry = metrics.get(key) or {}
    return _num(entry.get("mean")), _num(entry.get("std"))


def _fmt(mean: float, std: float, percent: bool) -> str:
    if not math.isfinite(mean):
        return "n/a"
    scale, digits = (100.0, 2) if percent else (1.0, 3)
    text = f"{mean * scale:.{digits}f}"
    return text + (f"±{std * scale:.{digits}f}" if math.isfinite(std) else "")


def _per_seed(run: Mapping[str, Any], metric: str) -> dict[int, float]:
    values = (run["metrics"].get(metric) or {}).get("per_seed") or []
    return {int(s): _num(v) for s, v in zip(run.get("seeds") or [], values)}


def paired_difference(
    ours: Mapping[int, float], theirs: Mapping[int, float]
) -> dict[str, Any] | None:
    """``ours - theirs`` on the seeds both have (finite values; same seeds = same splits).

    Returns ``mean`` and ``std`` (population, over seeds) of the per-seed difference, ``wins``
    (seeds where ours is higher), ``n_seeds`` and ``beyond_std`` (|mean| > std: a difference
    larger than its own seed-to-seed spread); None without a common seed.
    """
    seeds = [s for s in ours if s in theirs and math.isfinite(ours[s] + theirs[s])]
    if not seeds:
        return None
    diff = np.array([ours[s] - theirs[s] for s in seeds])
    mean, std = float(diff.mean()), float(diff.std())
    return {
        "mean": mean,
        "std": std,
        "wins": int((diff > 0).sum()),
        "n_seeds": len(seeds),
        "beyond_std": abs(mean) > std,
    }


def paired_comparison(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[tuple]]:
    """Per dataset: AMC minus each other method on the seeds both have (same splits).

    Columns: the mean difference ± its std over seeds (population), how many seeds AMC wins,
    and whether |mean difference| exceeds that std (a difference larger than the seed-to-seed
    spread of the difference). Returns the Markdown sections and long rows
    ``(dataset, method, task, metric, mean, std, n_seeds)`` with metric ``<m>_diff_vs_amc``.
    """
    sections, long_rows = [], []
    headline = {r["dataset"]: r for r in runs if r["method"] == "amc"}
    for dataset, amc in headline.items():
        metric = primary_metric(amc["task"])
        ref = _per_seed(amc, metric)
        rows = []
        for other in runs:
            if other["dataset"] != dataset or other is amc:
                continue
            paired = paired_difference(ref, _per_seed(other, metric))
            if paired is None:
                rows.append([str(other["label"]), "n/a", "0/0", "n/a"])
                continue
            mean, std, n_seeds = paired["mean"], paired["std"], paired["n_seeds"]
            clear = "yes" if paired["beyond_std"] else "no"
            rows.append(
                [
                    str(other["label"]),
                    f"{mean:+.3f}±{std:.3f}",
                    f"{paired['wins']}/{n_seeds}",
                    clear,
                ]
            )
            long_rows.append(
                (
                    dataset,
                    str(other["label"]),
                    amc["task"],
                    f"{metric}_diff_vs_amc",
                    mean,
                    std,
                    n_seeds,
                )
            )
        if rows:
            header = ["Method", f"AMC − method ({metric})", "seeds AMC wins", "beyond seed std"]
            sections.append(f"### Paired comparison: {dataset}\n\n" + _md_table(header, rows))
    return sections, long_rows


def efficiency_tables(efficiency: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """Table 10 per dataset: rows = measures, columns = methods (``efficiency.json``: dataset ->
    method label -> {params, gflops, step_ms, peak_mb})."""
    measures = (
        ("params", "Parameters (M)", 1e-6, 3),
        ("gflops", "Forward GFLOPs / sample", 1.0, None),
        ("step_ms", "Training step time (ms)", 1.0, 1),
        ("peak_mb", "Peak training memory (MB)", 1.0, 1),
    )
    sections = []
    for dataset, methods in efficiency.items():
        if not methods:
            continue
        body = []
        for key, label, scale, digits in measures:
            cells = []
            for stats in methods.values():
                value = _num(stats.get(key))
                if not math.isfinite(value):
                    cells.append("n/a")
                elif digits is None:  # FLOPs span orders of magnitude: significant digits
                    cells.append(f"{value * scale:.4g}")
                else:
                    cells.append(f"{value * scale:.{digits}f}")
            body.append([label, *cells])
        header = ["Measure", *methods]
        sections.append(f"### Table 10. Efficiency ({dataset})\n\n" + _md_table(header, body))
    return sections
