"""Saving and loading torch checkpoints: byte-identical for identical content, bad files named.

``torch.save`` to a file path names the zip members after that file, so saving to a random
temporary name would make identical weights give different bytes (and DVC re-run every stage
downstream). Saving goes through an in-memory buffer, whose members are always ``archive/...``.
"""

from __future__ import annotations

import io
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from amc.data.cohort import Cohort
from amc.data.store import atomic_path
from amc.errors import InputError

#: Keys every model checkpoint written by the train stage holds.
CHECKPOINT_KEYS = ("state_dict", "config", "scalers", "class_names", "modalities", "fused")


def canonical(obj: Any) -> Any:
    """A copy of ``obj`` whose pickle depends on its content only, not on object identity.

    Pickle writes a back-reference for an object it has already seen, so two equal strings
    that are one object (interned literals of a fresh run) or two objects (read back from a
    resume file) give different bytes. Strings are interned and dicts / lists / tuples rebuilt
    (never shared); tensors, arrays and other objects are kept as they are.
    """
    if type(obj) is str:  # sys.intern refuses str subclasses (numpy.str_): kept as they are
        return sys.intern(obj)
    if type(obj) in (dict, OrderedDict):
        out = type(obj)((canonical(k), canonical(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # state_dict versions, read by load_state_dict
            out._metadata = canonical(obj._metadata)
        return out
    if type(obj) in (list, tuple):
        return type(obj)(canonical(v) for v in obj)
    return obj


def checkpoint_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` as bytes; identical content gives identical bytes."""
    buffer = io.BytesIO()
    torch.save(canonical(obj), buffer)
    return buffer.getvalue()


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """Write ``torch.save(obj)`` to ``path`` atomically, with stable bytes."""
    data = checkpoint_bytes(obj)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_checkpoint(path: str | os.PathLike, hint: str) -> dict[str, Any]:
    """``torch.load`` a checkpoint; a missing, truncated or foreign file is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found", hint=hint)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except PermissionError:
        raise  # an OS error, reported as such (with the path) by the stage CLI
    except Exception as exc:
        # torch reports a truncated or non-zip file as RuntimeError (PytorchStreamReader),
        # OSError (EINVAL) or an unpickling / EOF error: the file cannot be used.
        raise InputError(f"{path}: not a readable checkpoint ({exc})", hint=hint) from exc
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not a checkpoint of this project", hint=hint)
    return obj


def load_model_checkpoint(path: str | os.PathLike, cohort: Cohort, dataset: str) -> dict[str, Any]:
    """Read a model checkpoint and check it fits ``cohort``: same modalities, classes and
    feature widths (a model trained on other data would fail deep inside ``predict``)."""
    hint = f"run `dvc repro -f train@{dataset}`"
    ckpt = read_checkpoint(path, hint)
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a model checkpoint (lacks {missing})", hint=hint)
    if list(ckpt["modalities"]) != list(cohort.modalities):
        raise InputError(
            f"{path}: trained on modalities {list(ckpt['modalities'])}, but dataset "
            f"{dataset!r} has {list(cohort.modalities)}",
            hint=hint,
        )
    if list(ckpt["class_names"]) != list(cohort.class_names):
        raise InputError(
            f"{path}: trained for classes {list(ckpt['class_names'])}, but the labels now hold "
            f"{list(cohort.class_names)}",
            hint=hint,
        )
    for name in cohort.modalities:
        scaler, features = ckpt["scalers"].get(name), cohort.features[name]
        if scaler is None:
            continue
        width = len(scaler.mean) if scaler.columns is None else int(max(scaler.columns)) + 1
        fits = features.shape[1] == width if scaler.columns is None else features.shape[1] >= width
        if features.ndim != 2 or not fits:
            raise InputError(
                f"{path}: trained on {width} {name!r} features, but the table now has "
                f"{features.shape[1:]}",
                hint=hint,
            )
    return ckpt
