"""The one config loader: read params.yaml, validate it up front, resolve per-dataset settings.

Global ``model`` / ``fusion`` / ``loss`` / ``train`` / ``split`` blocks are defaults;
``datasets.<item>.{model,fusion,loss,train,split}`` override them for one dataset.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from amc.errors import InputError

PARAMS_FILE = Path("params.yaml")
BLOCKS = ("model", "fusion", "loss", "train", "split")


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _nonneg_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _num(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return check


def _one_of(*values: Any):
    return lambda v: v in values


# key -> (check, human-readable allowed range)
SCHEMA: dict[str, tuple[Any, str]] = {
    "model.hidden": (_pos_int, "a positive integer divisible by 2*model.heads"),
    "model.heads": (_pos_int, "a positive integer"),
    "model.layers": (_pos_int, "a positive integer (fusion needs >= 2)"),
    "model.tokens": (_pos_int, "a positive integer"),
    "model.experts": (_pos_int, "a positive integer"),
    "model.top_k": (_pos_int, "an integer in [1, model.experts]"),
    "model.encoder_layers": (_nonneg_int, "an integer >= 0"),
    "model.dropout": (_num(0, 1, hi_open=True), "a number in [0, 1)"),
    "model.attention": (_one_of("differential", "vanilla"), "differential | vanilla"),
    "model.ffn": (_one_of("smoe", "dense"), "smoe | dense"),
    "model.lambda_init": (_num(0, 1, True, True), "a number in (0, 1)"),
    "fusion.enabled": (_one_of(True, False), "true | false"),
    "fusion.importance": (
        _one_of("mean", "std", "max", "alignment"),
        "mean | std | max | alignment",
    ),
    "fusion.token_score": (_one_of("attention", "linear"), "attention | linear"),
    "fusion.replace_rule": (_one_of("complement", "paper"), "complement | paper"),
    "loss.instance": (_num(0, float("inf")), "a number >= 0"),
    "loss.token": (_num(0, float("inf")), "a number >= 0"),
    "loss.balance": (_num(0, float("inf")), "a number >= 0"),
    "loss.temperature": (_num(0, float("inf"), lo_open=True), "a number > 0"),
    "train.lr": (_num(0, 1, lo_open=True), "a number in (0, 1]"),
    "train.weight_decay": (_num(0, float("inf")), "a number >= 0"),
    "train.epochs": (_pos_int, "a positive integer"),
    "train.warmup_epochs": (_nonneg_int, "an integer >= 0"),
    "train.batch_size": (_pos_int, "a positive integer"),
    "train.patience": (_pos_int, "a positive integer"),
    "train.device": (_one_of("auto", "cpu", "cuda"), "auto | cpu | cuda"),
    "train.precision": (_one_of("auto", "fp32", "bf16"), "auto | fp32 | bf16"),
    "train.num_threads": (
        _nonneg_int,
        "an integer >= 0 (0 = the cores shared out among train.workers)",
    ),
    "train.workers": (
        lambda v: v == "auto" or _pos_int(v),
        "auto (one process per CPU core, 1 on CUDA) or a positive integer",
    ),
    "split.seeds": (
        lambda v: (
            isinstance(v, list)
            and len(v) > 0
            and all(_nonneg_int(s) for s in v)
            and len(set(v)) == len(v)
        ),
        "a non-empty list of distinct integers >= 0",
    ),
    "split.fractions": (
        lambda v: (
            isinstance(v, list)
            and len(v) == 3
            and all(_num(0, 1, True, True)(f) for f in v)
            and abs(sum(v) - 1) < 1e-6
        ),
        "three numbers in (0, 1) summing to 1 (train, val, test)",
    ),
}
DATASET_KEYS = {
    "kind",
    "source",
    "task",
    "modalities",
    "features_dir",
    "labels",
    "train",
    "model",
    "fusion",
    "loss",
    "split",
    "project",
    "encoders",
    "max_features",
    "drop_incomplete",
    "drop_unmatched",
    "num_bins",
}
KINDS = ("mimic", "tcga", "adni", "custom")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate params.yaml and every dataset; raise InputError on the first bad key."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found", hint="run from the repository root")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    for block in BLOCKS:
        if not isinstance(params.get(block), dict):
            raise InputError(f"{path}: missing block {block!r}", hint="see SPEC section 5")
    datasets = params.get("datasets") or {}
    if not isinstance(datasets, dict) or not datasets:
        raise InputError(f"{path}: 'datasets' must list at least one dataset item")
    _validate_blocks(params, "")
    for name in datasets:
        dataset_params(params, name)
    for dataset, method in list_runs(params):
        run_params(params, dataset, method)
    return params


def _get(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _validate_blocks(tree: dict, prefix: str) -> None:
    for block in BLOCKS:
        known = {k.split(".", 1)[1] for k in SCHEMA if k.startswith(block + ".")}
        for key in tree.get(block, {}) or {}:
            if key not in known:
                raise InputError(
                    f"params: unknown key {prefix}{block}.{key}",
                    hint=f"known keys of {block}: {', '.join(sorted(known))}",
                )
    for key, (check, allowed) in SCHEMA.items():
        try:
            value = _get(tree, key)
        except KeyError:
            if prefix:
                continue  # dataset overrides are optional
            raise InputError(f"params: missing {key}", hint=f"set it to {allowed}") from None
        if not check(value):
            raise InputError(f"params: {prefix}{key}={value!r} is invalid", hint=f"use {allowed}")


def dataset_params(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Settings of one dataset item: global blocks merged with its overrides, validated."""
    datasets = params.get("datasets") or {}
    if name not in datasets:
        raise InputError(f"params: unknown dataset {name!r}", hint=f"one of {sorted(datasets)}")
    return resolve_item(params, name, datasets[name] or {}, f"datasets.{name}.")


def resolve_item(
    params: dict[str, Any], name: str, item: dict[str, Any], prefix: str
) -> dict[str, Any]:
    """Global blocks merged with a dataset item (possibly carrying a method's overrides)."""
    unknown = set(item) - DATASET_KEYS
    if unknown:
        raise InputError(
            f"params: unknown key {prefix}{sorted(unknown)[0]}",
            hint=f"known keys: {', '.join(sorted(DATASET_KEYS))}",
        )
    _validate_blocks(item, prefix)
    merged: dict[str, Any] = {k: v for k, v in item.items() if k not in BLOCKS}
    for block in BLOCKS:
        merged[block] = {**copy.deepcopy(params[block]), **(item.get(block) or {})}
    _validate_blocks(merged, prefix)
    merged["name"] = name
    if merged.get("kind") not in KINDS:
        raise InputError(
            f"params: {prefix}kind={merged.get('kind')!r} is invalid",
            hint=f"use one of {', '.join(KINDS)}",
        )
    if merged.get("task") not in ("classification", "survival"):
        raise InputError(
            f"params: {prefix}task={merged.get('task')!r} is invalid",
            hint="use classification | survival",
        )
    mods = merged.get("modalities")
    if merged["kind"] == "custom":
        if not isinstance(mods, dict) or not mods or not merged.get("labels"):
            raise InputError(
                f"params: custom dataset {name!r} needs modalities: {{name: file.parquet}} and "
                "labels: file.parquet",
                hint="see the README section 'Your own cohort'",
            )
    elif not isinstance(mods, list) or not mods:
        raise InputError(f"params: {prefix}modalities must be a non-empty list")
    m = merged["model"]
    if m["hidden"] % (2 * m["heads"]) != 0:
        raise InputError(
            f"params: {prefix}model.hidden={m['hidden']} is invalid",
            hint=f"use a multiple of 2*model.heads={2 * m['heads']}",
        )
    if m["top_k"] > m["experts"]:
        raise InputError(
            f"params: {prefix}model.top_k={m['top_k']} is invalid",
            hint=f"use an integer in [1, model.experts={m['experts']}]",
        )
    if (
        merged["train"]["warmup_epochs"] >= merged["train"]["epochs"]
        and merged["fusion"]["enabled"]
    ):
        raise InputError(
            f"params: {prefix}train.warmup_epochs={merged['train']['warmup_epochs']} is invalid",
            hint=f"fusion starts after warm-up: use fewer than train.epochs="
            f"{merged['train']['epochs']}",
        )
    return merged


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
#: AMCConfig fields a baseline reads from the ``model`` block (its stage depends on exactly these).
BASELINE_MODEL_KEYS = ("hidden", "heads", "layers", "tokens", "encoder_layers", "dropout")
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
        from stages._dataset import method_label  # the AMC row name from its switches

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
    ds = resolve_item(params, dataset, item, prefix)
    options = {
        **(entry.get("options") or {}),
        **((entry.get("dataset_options") or {}).get(dataset) or {}),
    }
    label = str(entry.get("label") or method)
    _seed_subset(ds, entry, prefix)
    return {**ds, "method": method, "family": entry["family"], "label": label, "options": options}


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
            hint=f"one of {sorted(datasets)}",
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
    ds = resolve_item(params, dataset, item, prefix)
    from stages._dataset import method_label

    tables = entry.get("tables") or []
    if not isinstance(tables, list) or not all(_pos_int(t) for t in tables):
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
