"""A training's resume state: what :func:`amc.training.loop.train_model` saves while it trains,
so that an interrupted training continues where it stopped and gives the same model.

The state (model, optimizer, RNGs, best weights, history) is reused only when its signature
matches: the same settings, seed, data (:func:`data_fingerprint`), split and library code
(:func:`code_fingerprint`). A finished state lets a re-run skip the training.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc.data.cohort import Cohort

log = logging.getLogger(__name__)

#: Seconds between two saves of a training's resume state; it is also saved when the training
#: ends. Why not after every epoch: the state (weights, Adam moments, best weights: 2-8 MB here)
#: took ~0.1 s to write, 5-15 % of a synthetic cohort's training time on 2 CPU cores. An
#: interruption loses at most this much work.
RESUME_EVERY_S = 60.0


def fresh_state() -> dict[str, Any]:
    """The running state of a training that has not started."""
    return {
        "epoch": 0,
        "best_val": -math.inf,
        "best_epoch": -1,
        "best_state": None,
        "stale": 0,
        "history": [],
    }


def signature(
    config: Any,
    method: str,
    method_options: dict[str, Any],
    settings: Any,
    seed: int,
    max_features: dict[str, int] | None,
    cohort: Cohort,
    split: np.ndarray,
) -> dict[str, Any]:
    """What a saved state must match to be reused: the model config (a dataclass), method,
    settings (a dataclass), seed, feature caps, classes, data, split and library code."""
    return {
        "config": asdict(config),
        "method": method,
        "method_options": method_options,
        "settings": asdict(settings),
        "seed": seed,
        "max_features": dict(max_features or {}),
        "class_names": list(cohort.class_names),
        "data": data_fingerprint(cohort, split),
        "code": code_fingerprint(),
    }


def restore(
    path: Path | None,
    signature: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    desc: str,
) -> dict[str, Any]:
    """The running state: a fresh one, or the saved one (model, optimizer and RNGs restored)
    when ``path`` holds a state written for the same ``signature``."""
    saved = read_state(path, desc)
    if saved is None:
        return fresh_state()
    if saved.get("signature") != signature:
        log.info("%s: ignoring %s written for other settings", desc, path)
        return fresh_state()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    log.info("%s: resuming at epoch %d from %s", desc, saved["state"]["epoch"], path)
    return saved["state"]


def saver(
    path: Path | None,
    every_s: float | None,
    run: Any,
    generator: torch.Generator,
    signature: dict[str, Any],
) -> Callable[[dict[str, Any]], None]:
    """``save(state)``, called after each epoch: writes the running state of ``run`` (its
    ``model`` and ``optimizer``) to ``path`` when the training ends (``state["done"]``) or when
    ``every_s`` seconds (default :data:`RESUME_EVERY_S`) have passed since the last save; does
    nothing without a path."""
    every = RESUME_EVERY_S if every_s is None else every_s
    last = time.monotonic()

    def save(state: dict[str, Any]) -> None:
        nonlocal last
        if path is None or not (state["done"] or time.monotonic() - last >= every):
            return
        save_state(path, run.model, run.optimizer, generator, state, signature)
        last = time.monotonic()

    return save


def save_state(path, model, optimizer, generator, state, signature) -> None:
    """Write one resume state (atomically, with stable bytes)."""
    from amc.training.checkpoint import save_checkpoint

    save_checkpoint(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": state,
            "signature": signature,
        },
        path,
    )


def read_state(path: Path | None, desc: str) -> dict[str, Any] | None:
    """The saved running state, or None; an unreadable file is ignored (training restarts)."""
    from amc.errors import InputError
    from amc.training.checkpoint import read_checkpoint

    if path is None or not Path(path).exists():
        return None
    try:
        return read_checkpoint(path, hint="")
    except InputError as exc:
        log.warning("%s: ignoring unreadable resume state %s (%s)", desc, path, exc)
        return None


def data_fingerprint(cohort: Cohort, split: np.ndarray) -> str:
    """SHA-256 of the patients, split, labels and features a training reads."""
    digest = hashlib.sha256()
    for array in (
        cohort.patient_ids.astype(str),
        split.astype(str),
        cohort.present,
        cohort.labels,
        cohort.time,
        cohort.event,
    ):
        if array is not None:
            digest.update(
                np.ascontiguousarray(array).tobytes()
                if array.dtype != object
                else "\x1f".join(array.tolist()).encode()
            )
    for name in cohort.modalities:
        digest.update(np.ascontiguousarray(cohort.features[name]).tobytes())
    return digest.hexdigest()


def code_fingerprint() -> str:
    """SHA-256 of the library's Python sources (``amc/``)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
