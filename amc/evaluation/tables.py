"""Render the paper's result tables (mean ± std over seeds) as Markdown and a long DataFrame.

Layout (as in the paper):

* Table 1, TCGA: rows = cancer types (UCEC, LUAD, LGG, BRCA, BLCA, then any other
  ``tcga-*`` survival item) + Average, columns = methods, cells Harrell's c-index
  ``mean±std`` with 3 decimals. The Average row is the mean of the per-type means (no std, as
  in the paper); a method missing some types is averaged over those it has, marked ``*`` and
  left out of the best / second-best marks.
  When any IPCW c-index is finite, Table 1b shows Uno's IPCW c-index the same way.
* Table 2, ADNI and Table 3, MIMIC-IV: rows = methods (AMC and variants such as
  ``AMC w/ STD``), columns Acc / Recall / Precision / F1 in percent ``mean±std`` with 2
  decimals, each followed by a "vs chance" line (AUROC and macro-F1 gains over chance).
* Any other dataset (custom items, or a known name with another task): a generic table, rows =
  methods; classification adds an AUROC column (3 decimals); survival shows c-index and IPCW
  c-index.

Best value of a row (Table 1) or column (Tables 2-3, generic) is **bold**, the second best
<u>underlined</u> (as the paper); bold needs two methods with a value, underline three.

Chance levels: AUROC 0.5; macro-F1 1/C, the expected macro-F1 of a predictor drawing labels
from the class prior (see :func:`amc.evaluation.metrics.chance_levels`; never below the
majority-class predictor's macro-F1, so the gain is conservative). ``result["chance"]`` may
give ``auroc`` / ``f1`` directly, or ``prevalence`` (list of class frequencies) or
``num_classes``; without them C is 2 for ``mimic-iv`` and 3 for ``adni``, and for other
datasets only the AUROC gain is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.evaluation.metrics import chance_levels

__all__ = ["LONG_COLUMNS", "TCGA_TYPES", "render_tables"]

#: Cancer types of Table 1, in the paper's order (items ``tcga-<type>``).
TCGA_TYPES: tuple[str, ...] = ("ucec", "luad", "lgg", "brca", "blca")
#: Columns of the long-format DataFrame returned by :func:`render_tables`.
LONG_COLUMNS = ["dataset", "method", "task", "metric", "mean", "std", "n_seeds"]

_CLS_COLUMNS = (("accuracy", "Acc"), ("recall", "Recall"), ("precision", "Precision"), ("f1", "F1"))
_KNOWN_CLASSES = {"mimic-iv": 2, "adni": 3}
_TASKS = ("classification", "survival")


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _stat(metrics: Mapping[str, Any], name: str) -> tuple[float, float]:
    entry = metrics.get(name)
    if not isinstance(entry, Mapping):
        return math.nan, math.nan
    return _num(entry.get("mean")), _num(entry.get("std"))


def _fmt(mean: float, std: float, percent: bool) -> str:
    if not math.isfinite(mean):
        return "n/a"
    scale, digits = (100.0, 2) if percent else (1.0, 3)
    text = f"{mean * scale:.{digits}f}"
    if math.isfinite(std):
        text += f"±{std * scale:.{digits}f}"
    return text


def _highlight(cells: list[str], values: list[float]) -> list[str]:
    """Bold the best, underline the second best (higher is better for every metric here).

    Bold needs at least two methods with a value, underline at least three (with two methods
    the second best is just the worst).
    """
    n_finite = sum(math.isfinite(v) for v in values)
    finite = sorted({round(v, 12) for v in values if math.isfinite(v)}, reverse=True)
    if len(finite) < 2 or n_finite < 2:
        return cells
    if n_finite < 3:
        finite = finite[:1]
    out = []
    for cell, v in zip(cells, values):
        if math.isfinite(v) and round(v, 12) == finite[0]:
            out.append(f"**{cell}**")
        elif math.isfinite(v) and len(finite) > 1 and round(v, 12) == finite[1]:
            out.append(f"<u>{cell}</u>")
        else:
            out.append(cell)
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _validate(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for i, res in enumerate(results):
        for key in ("dataset", "method", "task", "metrics"):
            if key not in res:
                raise InputError(
                    f"render_tables: result #{i} has no {key!r} key",
                    hint="each result needs dataset, method, task and metrics",
                )
        if res["task"] not in _TASKS:
            raise InputError(
                f"render_tables: result #{i} ({res['dataset']}, {res['method']}) has task "
                f"{res['task']!r}",
                hint=f"task must be one of {list(_TASKS)}",
            )
        if not isinstance(res["metrics"], Mapping):
            raise InputError(
                f"render_tables: metrics of ({res['dataset']}, {res['method']}) is not a dict",
                hint="pass the aggregate_seeds output (or metrics.json)",
            )
        key = (str(res["dataset"]), str(res["method"]))
        if key in seen:
            raise InputError(
                f"render_tables: two results for dataset {key[0]!r}, method {key[1]!r}",
                hint="give each variant its own method name, e.g. 'AMC w/ STD'",
            )
        seen.add(key)
    return list(results)


def _methods(results: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for res in results:
        if str(res["method"]) not in out:
            out.append(str(res["method"]))
    return out


def _n_seeds(entry: Any) -> int:
    if not isinstance(entry, Mapping):
        return 0
    values = [_num(v) for v in entry.get("per_seed") or []]
    return int(sum(math.isfinite(v) for v in values))


def _chance(res: Mapping[str, Any]) -> dict[str, float]:
    given = dict(res.get("chance") or {})
    out = {"auroc": _num(given.get("auroc", 0.5)), "f1": _num(given.get("f1"))}
    if not math.isfinite(out["f1"]):
        if given.get("prevalence") is not None:
            out["f1"] = chance_levels(given["prevalence"])["f1"]
        else:
            n = given.get("num_classes", _KNOWN_CLASSES.get(str(res["dataset"])))
            if n is not None and int(n) >= 2:
                out["f1"] = 1.0 / int(n)
    return out


def _tcga_table(results: list[Mapping[str, Any]], metric: str, title: str) -> tuple[str, list]:
    methods = _methods(results)
    by_key = {(str(r["dataset"]), str(r["method"])): r["metrics"] for r in results}
    names = {str(r["dataset"]) for r in results}
    order = [f"tcga-{t}" for t in TCGA_TYPES if f"tcga-{t}" in names]
    order += sorted(names - set(order))
    rows, means = [], {m: [] for m in methods}
    for ds in order:
        stats = [_stat(by_key.get((ds, m), {}), metric) for m in methods]
        cells = [_fmt(mu, sd, percent=False) for mu, sd in stats]
        cells = _highlight(cells, [mu for mu, _ in stats])
        rows.append([ds.removeprefix("tcga-").upper(), *cells])
        for m, (mu, _) in zip(methods, stats):
            means[m].append(mu)
    avg_cells, avg_values, partial, long_rows = [], [], False, []
    for m in methods:
        finite = [v for v in means[m] if math.isfinite(v)]
        avg = float(np.mean(finite)) if finite else math.nan
        cell = _fmt(avg, math.nan, percent=False)
        complete = len(finite) == len(order)
        if finite and not complete:
            cell += "*"
            partial = True
        avg_cells.append(cell)
        avg_values.append(avg if complete else math.nan)  # partial averages: no ranking
        long_rows.append(("tcga-average", m, "survival", metric, avg, math.nan, len(finite)))
    rows.append(["Average", *_highlight(avg_cells, avg_values)])
    text = f"### {title}\n\n" + _md_table(["Cancer Type", *methods], rows)
    if partial:
        text += "\n\n\\* averaged over the cancer types this method has results for."
    return text, long_rows


def _cls_rows(
    results: list[Mapping[str, Any]], columns: Sequence[tuple[str, str, bool]]
) -> list[list[str]]:
    grid = [[_stat(r["metrics"], key) for key, _, _ in columns] for r in results]
    cells = [[_fmt(mu, sd, pct) for (mu, sd), (_, _, pct) in zip(row, columns)] for row in grid]
    for j in range(len(columns)):
        col = _highlight([c[j] for c in cells], [g[j][0] for g in grid])
        for i in range(len(cells)):
            cells[i][j] = col[i]
    return [[str(r["method"]), *c] for r, c in zip(results, cells)]


def _chance_line(dataset: str, results: list[Mapping[str, Any]]) -> tuple[str, list]:
    parts, long_rows = [], []
    for res in results:
        chance = _chance(res)
        auroc, auroc_sd = _stat(res["metrics"], "auroc")
        f1, f1_sd = _stat(res["metrics"], "f1")
        bits = []
        if math.isfinite(auroc):
            gain = auroc - chance["auroc"]
            bits.append(f"AUROC {auroc:.3f} ({gain:+.3f} vs {chance['auroc']:.3f})")
            long_rows.append(
                (
                    dataset,
                    str(res["method"]),
                    "classification",
                    "auroc_gain_vs_chance",
                    gain,
                    auroc_sd,
                    _n_seeds(res["metrics"].get("auroc")),
                )
            )
        else:
            bits.append("AUROC n/a")
        if math.isfinite(f1) and math.isfinite(chance["f1"]):
            gain = f1 - chance["f1"]
            bits.append(
                f"macro-F1 {100 * f1:.2f}% ({100 * gain:+.2f} pts vs {100 * chance['f1']:.2f}%)"
            )
            long_rows.append(
                (
                    dataset,
                    str(res["method"]),
                    "classification",
                    "f1_gain_vs_chance",
                    gain,
                    f1_sd,
                    _n_seeds(res["metrics"].get("f1")),
                )
            )
        elif math.isfinite(f1):
            bits.append("macro-F1 chance level unknown (pass result['chance'])")
        parts.append(f"{res['method']}: " + ", ".join(bits))
    line = (
        f"**vs chance** ({dataset}; chance AUROC = 0.5, chance macro-F1 = 1/C): "
        + "; ".join(parts)
        + "."
    )
    return line, long_rows


_PAPER_CLASSIFICATION = (
    ("adni", "Table 2. Performance on ADNI"),
    ("mimic-iv", "Table 3. Performance on MIMIC-IV"),
)


def _is_tcga(r: Mapping[str, Any]) -> bool:
    return str(r["dataset"]).startswith("tcga-") and r["task"] == "survival"


def _metric_rows(results: Sequence[Mapping[str, Any]]) -> list[tuple]:
    """One long-form row per (dataset, method, metric)."""
    rows: list[tuple] = []
    for res in results:
        for metric, entry in res["metrics"].items():
            mu, sd = _stat(res["metrics"], metric)
            rows.append(
                (
                    str(res["dataset"]),
                    str(res["method"]),
                    res["task"],
                    str(metric),
                    mu,
                    sd,
                    _n_seeds(entry),
                )
            )
    return rows


def _tcga_sections(tcga: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[tuple]]:
    """Table 1 (c-index) and, when computed, Table 1b (IPCW c-index) with their long rows."""
    if not tcga:
        return [], []
    text, rows = _tcga_table(tcga, "c_index", "Table 1. Performance on TCGA (c-index)")
    sections, long_rows = [text], list(rows)
    if any(math.isfinite(_stat(r["metrics"], "c_index_ipcw")[0]) for r in tcga):
        text, rows = _tcga_table(
            tcga, "c_index_ipcw", "Table 1b. Performance on TCGA (Uno's IPCW c-index)"
        )
        sections.append(text)
        long_rows += rows
    return sections, long_rows


def _generic_sections(
    rest: Sequence[Mapping[str, Any]], cls_cols: list[tuple[str, str, bool]]
) -> tuple[list[str], list[tuple]]:
    """A table per (dataset, task) outside the paper's tables, with chance-level rows."""
    sections: list[str] = []
    long_rows: list[tuple] = []
    for dataset in sorted({str(r["dataset"]) for r in rest}):
        for task in _TASKS:
            part = [r for r in rest if str(r["dataset"]) == dataset and r["task"] == task]
            if not part:
                continue
            if task == "classification":
                cols = [*cls_cols, ("auroc", "AUROC", False)]
            else:
                cols = [("c_index", "c-index", False), ("c_index_ipcw", "IPCW c-index", False)]
            header = ["Method", *(label for _, label, _ in cols)]
            text = f"### {dataset} ({task})\n\n" + _md_table(header, _cls_rows(part, cols))
            if task == "classification":
                line, rows = _chance_line(dataset, part)
                text += "\n\n" + line
                long_rows += rows
            sections.append(text)
    return sections, long_rows


def render_tables(results: Sequence[Mapping[str, Any]], note: str = "") -> tuple[str, pd.DataFrame]:
    """Lay out Tables 1-3 of the paper (and generic tables) from aggregated results.

    Parameters
    ----------
    results : sequence of dict
        Each ``{"dataset": str, "method": str, "task": "classification" | "survival",
        "metrics": {metric: {"mean", "std", "per_seed"}}}`` (the :func:`aggregate_seeds`
        output, possibly read back from JSON with ``None`` for NaN) and optionally
        ``"chance"`` (see the module docstring). One result per (dataset, method); methods keep
        the order of their first appearance.
    note : str
        A sentence placed under the title (e.g. which seeds and which command made the tables).

    Returns
    -------
    markdown : str
        The tables; datasets without results produce no table.
    long : pd.DataFrame
        Columns :data:`LONG_COLUMNS`: one row per (dataset, method, metric), plus the TCGA
        average (dataset ``tcga-average``) and the gains over chance
        (``auroc_gain_vs_chance``, ``f1_gain_vs_chance``).

    Raises
    ------
    InputError
        On a result without the required keys, an unknown task or a duplicate
        (dataset, method).
    """
    results = _validate(results)
    long_rows = _metric_rows(results)
    tcga = [r for r in results if _is_tcga(r)]
    sections, rows = _tcga_sections(tcga)
    long_rows += rows
    done = {id(r) for r in tcga}
    cls_cols = [(k, f"{label} (%)", True) for k, label in _CLS_COLUMNS]
    for dataset, title in _PAPER_CLASSIFICATION:
        part = [r for r in results if r["dataset"] == dataset and r["task"] == "classification"]
        if not part:
            continue
        done.update(id(r) for r in part)
        header = ["Method", *(label for _, label, _ in cls_cols)]
        text = f"### {title}\n\n" + _md_table(header, _cls_rows(part, cls_cols))
        line, rows = _chance_line(dataset, part)
        sections.append(text + "\n\n" + line)
        long_rows += rows
    texts, rows = _generic_sections([r for r in results if id(r) not in done], cls_cols)
    sections += texts
    long_rows += rows

    head = "# Results\n\n" + (note.strip() + " " if note else "")
    head += "Mean±std over seeds (population std, ddof=0); n/a = not computable."
    body = "\n\n".join(sections) if sections else "No results."
    long = pd.DataFrame(long_rows, columns=LONG_COLUMNS)
    long["n_seeds"] = long["n_seeds"].astype(np.int64)
    return f"{head}\n\n{body}\n", long
