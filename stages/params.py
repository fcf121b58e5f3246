"""The stages' view of params.yaml: a thin layer over the typed schema in :mod:`amc.config`.

Global ``model`` / ``fusion`` / ``loss`` / ``train`` / ``split`` blocks are defaults;
``datasets.<item>.{model,fusion,loss,train,split}`` override them for one dataset. Every key, its
default and its allowed values are defined once, in ``amc/config.py`` (``sources.*``:
``amc/config_sources.py``; reference: docs/params.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from amc.config import HEADS_POOLINGS, OVERRIDES, resolve_dataset, resolve_item
from amc.config import load_params as _load_params
from amc.errors import InputError
from amc.schema import check_block

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate params.yaml, every dataset and every (dataset, method) run; raise
    InputError on the first bad key."""
    params = _load_params(path)
    for dataset, method in list_runs(params):
        run_params(params, dataset, method)
    return params


def dataset_params(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Settings of one dataset item: global blocks merged with its overrides, validated."""
    return resolve_dataset(params, name)


def modality_files(ds: dict[str, Any]) -> dict[str, Path]:
    """name -> feature Parquet path of a dataset item."""
    if ds["kind"] == "custom":
        return {name: Path(p) for name, p in ds["modalities"].items()}
    return {name: Path(ds["features_dir"]) / f"{name}.parquet" for name in ds["modalities"]}


def labels_file(ds: dict[str, Any]) -> Path:
    """The label table of a dataset item."""
    if ds.get("labels"):
        return Path(ds["labels"])
    return Path(ds["features_dir"]) / "labels.parquet"


# ---- The method axis: AMC, the baselines on every dataset, AMC variants on one dataset each ----

AMC = "amc"
#: the key of a configure-stage run file that carries the run code's fingerprint digest: not a
#: setting, it changes the file (and so re-runs the stage) when the run code changes
CODE_KEY = "code_fingerprint"


def is_variant(run: dict[str, Any]) -> bool:
    """An AMC variant's run settings (AMC with a switch flipped), not AMC itself or a baseline."""
    return run["family"] == AMC and run["method"] != AMC


def read_configure_file(path: Path) -> Any:
    """The JSON content of a file the configure stage wrote (a run's settings, the efficiency or
    report listing); a missing or unreadable file is an error that says to run that stage."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found", hint="run `dvc repro configure` first") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc})", hint="re-run the configure stage"
        ) from None


#: AMCConfig fields a baseline reads from the ``model`` block (its stage depends on exactly these).
BASELINE_MODEL_KEYS = ("hidden", "heads", "layers", "tokens", "encoder_layers", "dropout")
#: What a baseline reads of AMC's blocks: the shared model sizes, and ``loss.balance`` (the trainer
#: weights every method's load-balance loss by it: FuseMoE's and LiMoE's). The other keys of these
#: blocks are reset to their defaults in a baseline's settings, so that its resolved settings, and
#: the config file its run stage depends on, change only with what it reads.
BASELINE_READS = {"model": BASELINE_MODEL_KEYS, "fusion": (), "loss": ("balance",)}
BASELINE_KEYS = {"family", "label", "options", "dataset_options", "model", "train", "seeds"}
VARIANT_KEYS = {
    "dataset",
    "label",
    "tables",
    "modalities",
    "drop_incomplete",
    "model",
    "fusion",
    "loss",
    "train",
    "seeds",
}


def _block(params: dict[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key) or {}
    if not isinstance(value, dict):
        raise InputError(f"params: {key} must be a mapping of name -> settings")
    return value


def list_runs(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (dataset, method) the pipeline trains: AMC and each baseline on every dataset, then
    each variant on its own dataset (the order of the report's columns)."""
    runs = []
    for dataset in params.get("datasets") or {}:
        runs += [(dataset, name) for name in _block(params, "baselines")]
        runs.append((dataset, AMC))
    for name, variant in _block(params, "variants").items():
        runs.append((str((variant or {}).get("dataset")), name))
    return runs


def run_params(params: dict[str, Any], dataset: str, method: str) -> dict[str, Any]:
    """Settings of one (dataset, method) run: the dataset's settings with the method's overrides.

    Adds ``method`` (the name), ``family`` (``amc`` or the baseline's registry name), ``label``
    (its row name in the tables), ``options`` (the baseline's knobs) and ``tables`` (the paper
    tables a variant belongs to).
    """
    baselines, variants = _block(params, "baselines"), _block(params, "variants")
    clash = (set(baselines) & set(variants)) | ({AMC} & (set(baselines) | set(variants)))
    if clash:
        raise InputError(
            f"params: method name {sorted(clash)[0]!r} is used twice",
            hint="names in baselines and variants must be unique and not 'amc'",
        )
    if method == AMC:
        ds = dataset_params(params, dataset)
        return {**ds, "method": AMC, "family": AMC, "label": method_label(ds), "options": {}}
    if method in baselines:
        return _baseline_run(params, dataset, method, baselines[method] or {})
    if method in variants:
        return _variant_run(params, dataset, method, variants[method] or {})
    raise InputError(
        f"params: unknown method {method!r}",
        hint=f"one of {sorted({AMC, *baselines, *variants})}",
    )


def _check_keys(entry: dict[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise InputError(
            f"params: unknown key {prefix}{sorted(unknown)[0]}",
            hint=f"known keys: {', '.join(sorted(allowed))}",
        )


def _baseline_run(
    params: dict[str, Any], dataset: str, method: str, entry: dict[str, Any]
) -> dict[str, Any]:
    prefix = f"baselines.{method}."
    _check_keys(entry, BASELINE_KEYS, prefix)
    if not isinstance(entry.get("family"), str):
        raise InputError(
            f"params: {prefix}family is missing",
            hint="the baseline's name in amc.baselines.METHODS, e.g. tf, mult, limoe",
        )
    bad = set(entry.get("model") or {}) - set(BASELINE_MODEL_KEYS)
    if bad:
        raise InputError(
            f"params: {prefix}model.{sorted(bad)[0]} does not apply to a baseline",
            hint=f"baselines read {', '.join(BASELINE_MODEL_KEYS)}; put knobs in options",
        )
    for key in ("options", "dataset_options"):
        if not isinstance(entry.get(key) or {}, dict):
            raise InputError(f"params: {prefix}{key} must be a mapping")
    datasets = params.get("datasets") or {}
    if dataset not in datasets:
        raise InputError(f"params: unknown dataset {dataset!r}", hint=f"one of {sorted(datasets)}")
    item = copy.deepcopy(datasets[dataset] or {})
    for block in ("model", "train"):
        item[block] = {**(item.get(block) or {}), **(entry.get(block) or {})}
    # Fusion warm-up is AMC's: a baseline selects its model from the first epoch.
    item["train"]["warmup_epochs"] = 0
    ds = _keep_what_baselines_read(resolve_item(params, dataset, item, prefix))
    options = {
        **(entry.get("options") or {}),
        **((entry.get("dataset_options") or {}).get(dataset) or {}),
    }
    label = str(entry.get("label") or method)
    _seed_subset(ds, entry, prefix)
    return {**ds, "method": method, "family": entry["family"], "label": label, "options": options}


def _keep_what_baselines_read(ds: dict[str, Any]) -> dict[str, Any]:
    for block, read in BASELINE_READS.items():
        defaults = check_block(OVERRIDES[block], {})
        ds[block] = {k: ds[block][k] if k in read else v for k, v in defaults.items()}
    return ds


def _seed_subset(ds: dict[str, Any], entry: dict[str, Any], prefix: str) -> None:
    """``seeds``: train on some of ``split.seeds`` only (a cheaper run; paired comparisons use
    the seeds both methods have)."""
    if entry.get("seeds") is None:
        return
    seeds, allowed = entry["seeds"], ds["split"]["seeds"]
    if not isinstance(seeds, list) or not seeds or any(s not in allowed for s in seeds):
        raise InputError(
            f"params: {prefix}seeds={seeds!r} is invalid",
            hint=f"a non-empty subset of split.seeds={allowed}",
        )
    ds["split"] = {**ds["split"], "seeds": list(seeds)}


def _variant_run(
    params: dict[str, Any], dataset: str, method: str, entry: dict[str, Any]
) -> dict[str, Any]:
    prefix = f"variants.{method}."
    _check_keys(entry, VARIANT_KEYS, prefix)
    datasets = params.get("datasets") or {}
    if entry.get("dataset") not in datasets:
        raise InputError(
            f"params: {prefix}dataset={entry.get('dataset')!r} is not a dataset item",
            hint=f"one of {sorted(datasets)}; or remove variants.{method} with its dataset",
        )
    if dataset != entry["dataset"]:
        raise InputError(
            f"params: variant {method!r} runs on {entry['dataset']!r}, not {dataset!r}",
            hint=f"use `python -m stages.train {entry['dataset']} {method}`",
        )
    item = copy.deepcopy(datasets[dataset] or {})
    for block in ("model", "fusion", "loss", "train"):
        item[block] = {**(item.get(block) or {}), **(entry.get(block) or {})}
    if "drop_incomplete" in entry:
        item["drop_incomplete"] = entry["drop_incomplete"]
    if entry.get("modalities") is not None:
        item["modalities"] = _modality_subset(item, entry["modalities"], prefix)
        # A modality alone (Table 11) is evaluated on the patients who have it: the others have
        # nothing to predict from in this run (they are logged and left out).
        item["drop_unmatched"] = True
        for per_modality in ("encoders", "max_features"):  # only the modalities kept
            if isinstance(item.get(per_modality), dict):
                item[per_modality] = {
                    k: v for k, v in item[per_modality].items() if k in item["modalities"]
                }
    ds = resolve_item(params, dataset, item, prefix)
    tables = entry.get("tables") or []
    if not isinstance(tables, list) or not all(_table_number(t) for t in tables):
        raise InputError(f"params: {prefix}tables must be a list of table numbers, e.g. [4]")
    label = str(entry.get("label") or method_label(ds))
    _seed_subset(ds, entry, prefix)
    return {**ds, "method": method, "family": AMC, "label": label, "options": {}, "tables": tables}


def _modality_subset(item: dict[str, Any], wanted: Any, prefix: str) -> Any:
    have = item.get("modalities") or []
    if not isinstance(wanted, list) or not wanted or any(m not in have for m in wanted):
        raise InputError(
            f"params: {prefix}modalities={wanted!r} is invalid",
            hint=f"a non-empty list of the dataset's modalities {list(have)}",
        )
    if isinstance(have, dict):  # custom datasets map name -> file
        return {m: have[m] for m in wanted}
    return list(wanted)


def _table_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def method_label(ds: dict[str, Any]) -> str:
    """The row name of this configuration in the paper's tables (Tables 3-6, 9)."""
    m, f, loss = ds["model"], ds["fusion"], ds["loss"]
    parts = []
    if not f["enabled"]:
        parts.append("w/o Token Fusion")
    if loss["instance"] == 0 and loss["token"] == 0:
        parts.append("w/o Contrastive Loss")
    if m["attention"] == "vanilla":
        parts.append("w/o Differential Attention")
    if m["ffn"] == "dense":
        parts.append("w/o SMoE")
    if f["importance"] != "mean":
        parts.append(
            "w/ " + {"std": "STD", "max": "Max", "alignment": "Alignment"}[f["importance"]]
        )
    if f["token_score"] == "linear":
        parts.append("w/ Original Token Fusion")
    if f["replace_rule"] == "paper":
        parts.append("w/ paper K rule")
    elif f["replace_rule"] == "deficit":
        parts.append("w/ deficit K rule")
    if f["pooling"] == "importance":
        parts.append("w/ importance pooling")
    elif f["pooling"] == "deficit":
        parts.append("w/ deficit pooling")
    elif f["pooling"] == "importance_logits":
        parts.append("w/ importance-weighted modality heads")
    elif f["pooling"] == "deficit_logits":
        parts.append("w/ deficit-weighted modality heads")
    if f["pooling"] in HEADS_POOLINGS and (
        loss.get("modality_heads_weights") == "importance"
    ):
        parts.append("importance-weighted head losses")
    if ds["kind"] == "adni" and not ds.get("drop_incomplete", False):
        parts.append("w/ missing modality")
    return "AMC" + ("" if not parts else " " + ", ".join(parts))
