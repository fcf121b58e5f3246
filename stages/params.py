"""The stages' view of params.yaml: a thin layer over the typed schema in :mod:`amc.config`.

Global ``model`` / ``fusion`` / ``loss`` / ``train`` / ``split`` blocks are defaults;
``datasets.<item>.{model,fusion,loss,train,split}`` override them for one dataset. Every key, its
default and its allowed values are defined once, in ``amc/config.py`` (reference:
docs/params.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amc.config import load_params as _load_params
from amc.config import resolve_dataset

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate params.yaml and every dataset; raise InputError on the first bad key."""
    return _load_params(path)


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
