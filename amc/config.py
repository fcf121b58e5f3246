"""The one typed schema of params.yaml: every key once, with its default, rule and description.

Each block is a dataclass; each key is one line ``name: type = key(default, rule, "what")``.
The ``sources`` blocks (raw data paths and extraction keys per source) are in
:mod:`amc.config_sources`.
Adding a key is that one line (plus its use in code); the loader, the error messages, the
generated reference (``docs/params.md``) and the settings objects all read it from here.

* :func:`validate_params` checks a parsed params tree before any work: unknown or misspelt keys
  name themselves and the nearest valid key, bad values name the key and the allowed values;
  missing keys take their defaults.
* :func:`resolve_dataset` merges the global blocks with one ``datasets.<name>`` item.
* :class:`TrainSettings` and :func:`model_kwargs` are built from the keys marked ``feeds="train"``
  and ``feeds="model"``, so no key is listed twice.

Regenerate the reference: ``python -m amc.config docs/params.md``.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import Field, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

from amc.config_sources import SourcesParams
from amc.errors import InputError
from amc.schema import (
    FLAG,
    FRACTIONS,
    TEXT,
    Rule,
    block,
    check_block,
    either,
    integer,
    key,
    list_of,
    mapping,
    nearest,
    number,
    one_of,
    optional,
    reference_rows,
    unknown_key,
)

MODALITY_LIST = list_of(TEXT, distinct=True)
#: ``fusion.pooling`` values; the last two give AMC one head per modality (the model reads both
#: from here, and so do the stages that label a run, which must not import torch)
POOLINGS: tuple[str, ...] = (
    "concat",
    "importance",
    "deficit",
    "importance_logits",
    "deficit_logits",
)
HEADS_POOLINGS: tuple[str, ...] = ("importance_logits", "deficit_logits")


# ---------------------------------------------------------------------------- the blocks
@dataclass
class ModelParams:
    """The AMC network."""

    hidden: int = key(64, integer(1), "token width D (a multiple of 2*heads)", "model")
    heads: int = key(8, integer(1), "attention heads", "model")
    layers: int = key(2, integer(1), "improved blocks (token fusion needs >= 2)", "model")
    tokens: int = key(16, integer(1), "tokens per modality N", "model")
    experts: int = key(8, integer(1), "experts of the sparse MoE", "model")
    top_k: int = key(2, integer(1), "experts per token (<= experts)", "model")
    encoder_layers: int = key(1, integer(0), "extra layers per modality encoder", "model")
    dropout: float = key(0.1, number(0, 1, high_open=True), "dropout rate", "model")
    attention: str = key("differential", one_of("differential", "vanilla"), "attention", "model")
    ffn: str = key("smoe", one_of("smoe", "dense"), "feed-forward layer", "model")
    lambda_init: float = key(
        0.1, number(0, 1, True, True), "differential attention's initial lambda", "model"
    )


@dataclass
class FusionParams:
    """Token fusion across modalities."""

    enabled: bool = key(True, FLAG, "fuse tokens after the warm-up", "model", name="fusion")
    importance: str = key(
        "mean", one_of("mean", "std", "max", "alignment"), "modality importance estimator", "model"
    )
    token_score: str = key("attention", one_of("attention", "linear"), "token scorer", "model")
    replace_rule: str = key(
        "complement",
        one_of("complement", "paper", "deficit"),
        "how many tokens are replaced (deficit: K from the importance deficit)",
        "model",
    )
    pooling: str = key(
        "concat",
        one_of(*POOLINGS),
        "pooled modalities concatenated as they are, or weighted by the fusion's importance "
        "(importance: s x present modalities; deficit: min(1, s x present modalities)); "
        "importance_logits: one head per modality, predictions mixed by that importance; "
        "deficit_logits: mixed by min(1, importance x present modalities)",
        "model",
    )


@dataclass
class LossParams:
    """Auxiliary loss weights and the contrastive temperature."""

    instance: float = key(0.1, number(0), "weight of the instance contrastive loss", "train")
    token: float = key(0.1, number(0), "weight of the token contrastive loss", "train")
    balance: float = key(0.01, number(0), "weight of the MoE load-balancing loss", "train")
    modality_heads: float = key(
        1.0,
        number(0),
        "weight of each modality head's own task loss (fusion.pooling: importance_logits only; "
        "no effect otherwise)",
        "train",
    )
    modality_heads_weights: str = key(
        "uniform",
        one_of("uniform", "importance"),
        "each modality head's loss over patients: uniform, or weighted per patient by the "
        "detached weights that mix the heads (a head learns little where its modality is flagged)",
        "train",
    )
    temperature: float = key(0.1, number(0, low_open=True), "contrastive temperature", "model")
    token_pairs: str = key(
        "all",
        one_of("all", "ring"),
        "L_T over all M(M-1)/2 modality pairs, or a ring of M pairs (linear in M)",
        "model",
    )


@dataclass
class TrainParams:
    """Optimisation and hardware."""

    lr: float = key(0.001, number(0, 1, low_open=True), "AdamW learning rate", "train")
    weight_decay: float = key(0.0001, number(0), "AdamW weight decay", "train")
    epochs: int = key(30, integer(1), "maximum epochs", "train")
    warmup_epochs: int = key(5, integer(0), "epochs before fusion starts", "train")
    batch_size: int = key(64, integer(1), "patients per batch", "train")
    patience: int = key(10, integer(1), "early-stopping patience in epochs", "train")
    device: str = key("auto", one_of("auto", "cpu", "cuda"), "compute device", "train")
    precision: str = key("auto", one_of("auto", "fp32", "bf16"), "autocast precision", "train")
    num_threads: int = key(0, integer(0), "torch threads per worker; 0 = cores shared", "train")
    workers: Any = key(
        "auto", either(one_of("auto"), integer(1)), "seeds trained in parallel processes"
    )


@dataclass
class SplitParams:
    """Patient-level splits."""

    seeds: list = key([0, 1, 2, 3, 4], list_of(integer(0), distinct=True), "split seeds")
    fractions: list = key([0.7, 0.15, 0.15], FRACTIONS, "train / val / test fractions")


@dataclass
class ImportanceStudyParams:
    """The controlled study of whether importance reflects modality quality."""

    seeds: list = key([0, 1, 2], list_of(integer(0), distinct=True), "study seeds")
    quick: bool = key(False, FLAG, "one seed, 50% corruption only")
    grid: str = key(
        "default",
        one_of("default", "candidate", "full"),
        "AMC variants of the task-metric table: default (the paper's estimator and the "
        "defaults) | candidate (default + alignment, deficit rule, importance pooling) | full "
        "(importance x replace_rule x pooling, 12 variants; slow)",
    )
    n_patients: int = key(
        600,
        integer(60),
        "patients of the synthetic cohort (the test split is 15 % of them: more patients, "
        "less seed-to-seed noise in the task-metric table, longer run)",
    )
    task_side: str = key(
        "goal",
        one_of("goal", "all"),
        "settings of the task-metric table: goal (noise at 30 and 50 %) or all (every "
        "corruption kind and level; 3x the trainings of the references)",
    )
    label_noise: float = key(
        0.5,
        number(0),
        "std of the noise term of the synthetic label 1[z . beta + noise > 0] (lower: cleaner "
        "labels, higher F1 ceiling)",
    )
    private_latent: int = key(
        0,
        Rule(lambda v: integer(0).check(v) and v < 8, "an integer in 0..7"),
        "latent dims (of 8) only the corrupted modality m0 sees (0: m1 and m2 make m0 nearly "
        "redundant; 6: losing m0 matters, so acting on its corruption can show)",
    )


KINDS = ("mimic", "tcga", "adni", "custom")
#: Blocks a dataset item may override; globals fill what it leaves out.
OVERRIDES = {
    "model": ModelParams,
    "fusion": FusionParams,
    "loss": LossParams,
    "train": TrainParams,
    "split": SplitParams,
}


@dataclass
class DatasetParams:
    """One ``datasets.<name>`` item (blocks model / fusion / loss / train / split override)."""

    kind: str = key(None, one_of(*KINDS), "which extractor wrote its features")
    task: str = key(None, one_of("classification", "survival"), "prediction task")
    modalities: Any = key(
        None,
        either(MODALITY_LIST, mapping(TEXT)),
        "modality names, or for custom: name -> feature Parquet",
    )
    source: Any = key(None, optional(one_of("mimic", "tcga", "adni")), "its sources.* block")
    features_dir: Any = key(None, optional(TEXT), "folder of <modality>.parquet and labels")
    labels: Any = key(None, optional(TEXT), "custom: the label Parquet")
    project: Any = key(None, optional(TEXT), "TCGA project kept from the shared tables")
    encoders: dict = key({}, mapping(one_of("vector", "query", "bag", "volume")), "encoders")
    max_features: dict = key({}, mapping(integer(1)), "most variable features kept per modality")
    drop_incomplete: bool = key(False, FLAG, "drop patients missing any modality")
    drop_unmatched: bool = key(False, FLAG, "drop patients without any modality")
    num_bins: int = key(4, integer(2), "survival: discrete-time bins")


@dataclass
class Params:
    """params.yaml: global blocks are every dataset's defaults."""

    model: ModelParams = block(ModelParams, "the AMC network")
    fusion: FusionParams = block(FusionParams, "token fusion")
    loss: LossParams = block(LossParams, "loss weights")
    train: TrainParams = block(TrainParams, "optimisation")
    split: SplitParams = block(SplitParams, "splits")
    importance_study: ImportanceStudyParams = block(ImportanceStudyParams, "importance study")
    sources: SourcesParams = block(SourcesParams, "raw sources")
    datasets: dict = key({}, mapping(Rule(lambda v: isinstance(v, dict), "a mapping")), "items")
    baselines: dict = key(
        {},
        mapping(Rule(lambda v: isinstance(v, dict), "a mapping")),
        "compared methods run on every dataset (see the README: comparing methods)",
    )
    variants: dict = key(
        {},
        mapping(Rule(lambda v: isinstance(v, dict), "a mapping")),
        "AMC variants, each on one dataset: the paper's ablations, Tables 9 and 11",
    )


def validate_params(tree: Any, source: str = "params.yaml") -> dict[str, Any]:
    """The validated params tree with defaults filled in; every dataset item is checked too."""
    if not isinstance(tree, dict):
        raise InputError(f"{source}: expected a mapping of blocks, got {type(tree).__name__}")
    params = check_block(Params, tree)
    datasets = params["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise InputError(
            f"{source}: 'datasets' must list at least one dataset item",
            hint="see the README section 'Your own cohort'",
        )
    for name in datasets:
        resolve_dataset(params, name)
    return params


def resolve_dataset(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One dataset item's settings: the global blocks merged with its overrides, validated."""
    datasets = params.get("datasets") or {}
    if name not in datasets:
        raise InputError(
            f"params: unknown dataset {name!r}",
            hint=f"{nearest(name, list(datasets))}one of {sorted(datasets)}",
        )
    return resolve_item(params, name, datasets[name] or {}, f"datasets.{name}.")


def resolve_item(params: dict[str, Any], name: str, item: Any, prefix: str) -> dict[str, Any]:
    """A dataset item (possibly carrying a compared method's overrides) merged with the global
    blocks and validated; ``prefix`` names where its keys come from in error messages."""
    if not isinstance(item, dict):
        raise InputError(f"params: {prefix.rstrip('.')} must be a mapping of keys")
    own = {k: v for k, v in item.items() if k not in OVERRIDES}
    for k in own:
        if k not in DatasetParams.__dataclass_fields__:
            known = list(DatasetParams.__dataclass_fields__) + list(OVERRIDES)
            raise unknown_key(str(k), prefix, known)
    merged = check_block(DatasetParams, own, prefix, partial=True)
    for block_name, cls in OVERRIDES.items():
        override = check_block(cls, item.get(block_name), f"{prefix}{block_name}.", partial=True)
        merged[block_name] = {**copy.deepcopy(params[block_name]), **override}
        check_block(cls, merged[block_name], f"{prefix}{block_name}.")
    merged["name"] = name
    _check_dataset(merged, prefix)
    return merged


def _check_dataset(ds: dict[str, Any], prefix: str) -> None:
    """Rules across keys, which a single key's rule cannot see."""
    for required in ("kind", "task"):
        if ds.get(required) is None:
            rule = DatasetParams.__dataclass_fields__[required].metadata["rule"]
            raise InputError(f"params: missing {prefix}{required}", hint=f"use {rule.allowed}")
    mods = ds.get("modalities")
    if ds["kind"] == "custom":
        if not isinstance(mods, dict) or not mods or not ds.get("labels"):
            raise InputError(
                f"params: custom dataset {ds['name']!r} needs modalities: {{name: file.parquet}} "
                "and labels: file.parquet",
                hint="see the README section 'Your own cohort'",
            )
    elif not isinstance(mods, list) or not ds.get("features_dir"):
        raise InputError(
            f"params: {prefix}modalities must be a non-empty list and features_dir a folder",
            hint="e.g. modalities: [lab, note, code], features_dir: data/features/mimic",
        )
    names = set(mods)
    for mapping_key in ("encoders", "max_features"):
        for mod in ds.get(mapping_key) or {}:
            if mod not in names:
                raise InputError(
                    f"params: {prefix}{mapping_key}.{mod} names no modality of this dataset",
                    hint=f"{nearest(mod, sorted(names))}modalities: {', '.join(sorted(names))}",
                )
    m, t = ds["model"], ds["train"]
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
    if t["warmup_epochs"] >= t["epochs"] and ds["fusion"]["enabled"]:
        raise InputError(
            f"params: {prefix}train.warmup_epochs={t['warmup_epochs']} is invalid",
            hint=f"fusion starts after warm-up: use fewer than train.epochs={t['epochs']}",
        )


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and validate a params file; raise InputError on the first bad key."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found", hint="run from the repository root")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    return validate_params(tree, str(path))


# ---------------------------------------------------------------------- settings objects
#: The blocks whose keys feed each settings object, in field order.
FEEDS = {"train": ("train", "loss"), "model": ("model", "fusion", "loss")}


def _fed(feeds: str) -> list[tuple[str, str, Field]]:
    """(block, key, field) of every key that becomes a field of the ``feeds`` settings."""
    out = []
    for block_name in FEEDS[feeds]:
        cls = OVERRIDES[block_name]
        out += [(block_name, f.name, f) for f in fields(cls) if f.metadata.get("feeds") == feeds]
    return out


def _settings_class() -> type:
    specs = [
        (f.metadata.get("name") or k, Any, field(default=f.default)) for _, k, f in _fed("train")
    ]
    cls = make_dataclass("TrainSettings", specs)
    cls.__module__ = __name__
    cls.__doc__ = (
        "Optimisation settings: the keys of the params train and loss blocks marked "
        "feeds='train' (learning rate, epochs, device, loss weights, ...)."
    )
    return cls


TrainSettings = _settings_class()


def train_settings(ds: dict[str, Any]) -> Any:
    """The :class:`TrainSettings` of one resolved dataset item."""
    return TrainSettings(**{f.metadata.get("name") or k: ds[b][k] for b, k, f in _fed("train")})


def model_kwargs(ds: dict[str, Any]) -> dict[str, Any]:
    """AMC network config fields of one resolved dataset item (model / fusion / loss keys)."""
    kwargs = {f.metadata.get("name") or k: ds[b][k] for b, k, f in _fed("model")}
    kwargs["encoders"] = dict(ds.get("encoders") or {})
    if ds["task"] == "survival":
        kwargs["num_bins"] = int(ds.get("num_bins") or 4)
    return kwargs


def render_reference() -> str:
    """The Markdown reference of every params key (docs/params.md)."""
    lines = [
        "# params.yaml reference",
        "",
        "Generated from `amc/config.py` by `python -m amc.config docs/params.md`; a test keeps",
        "it in sync. Keys left out of params.yaml take the default shown. A `datasets.<name>`",
        "item may override any key of the `model`, `fusion`, `loss`, `train` and `split` blocks.",
        "",
        "Adding a key is one line in its block's dataclass in `amc/config.py` (`sources.*`:",
        "`amc/config_sources.py`), e.g.",
        '`pooling: str = key("mean", one_of("mean", "attention"), "how tokens are pooled")`',
        '(add `"model"` / `"train"` as a fourth argument when the AMC network config or the',
        "training settings take it as a field); then regenerate this file. A new block is a new",
        "dataclass and a `block(...)` line in its parent.",
        "",
        "| key | default | allowed | description |",
        "| --- | --- | --- | --- |",
    ]
    for f in fields(Params):
        if "block" in f.metadata:
            lines += reference_rows(f.metadata["block"], f.name + ".")
    lines += reference_rows(DatasetParams, "datasets.<name>.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if target is None:
        print(render_reference(), end="")
    else:
        target.write_text(render_reference())
