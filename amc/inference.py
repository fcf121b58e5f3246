"""Inference with a trained checkpoint: rebuild the model, run it over a cohort, export what it
computed (probabilities or risk, and, when the model returns them, the fusion step's modality
importance, replaced-token counts, token scores and the cross-modal agreement).

Used by evaluation and by the training loop's validation; it does not depend on training code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from amc.baselines import build_model
from amc.data.cohort import Cohort
from amc.data.preprocess import model_inputs
from amc.model import AMCConfig
from amc.model.heads import risk_score
from amc.runtime import autocast, autocast_dtype, select_device


def load_model(checkpoint: dict[str, Any], device: torch.device) -> nn.Module:
    """The checkpoint's model (any method; a checkpoint without ``method`` is AMC) in eval mode
    on ``device``."""
    config = dict(checkpoint["config"])
    config["modalities"] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in config["modalities"].items()
    }
    model = build_model(
        checkpoint.get("method", "amc"), AMCConfig(**config), checkpoint.get("method_options") or {}
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def _append(parts: dict[str, list[np.ndarray]], key: str, value: torch.Tensor | None) -> None:
    if value is not None:
        parts.setdefault(key, []).append(value.detach().float().cpu().numpy())


@torch.inference_mode()
def run_model(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    present: torch.Tensor,
    fuse: bool,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Eval-mode forward over all rows, in order.

    Returns ``logits`` (P, C) or (P, T) always; and only for the outputs the model returns (not
    None): ``importance`` (P, M) the s of the last fusion step, ``replaced`` (P, M) int64 its
    replaced-token counts, ``donors`` (P, M, M) how many of modality i's tokens came from
    modality j, ``token_scores`` (P, M, N) its eta, ``agreement`` (P, M) the
    cross-modal alignment importance; with several fusion steps also ``importance_steps`` and
    ``replaced_steps`` (P, S, M), step s after improved block s.
    """
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(present), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(present)))
        batch = {k: v[idx].to(device) for k, v in inputs.items()}
        with autocast(device, dtype):
            out = model(batch, present[idx].to(device), fuse=fuse)
        _append(parts, "logits", out.logits)
        _append(parts, "importance", out.modality_importance)
        _append(parts, "token_scores", out.token_scores)
        if out.replaced_from is not None:
            donor = out.replaced_from  # (B, M, N): donor modality index, -1 where kept
            parts.setdefault("replaced", []).append((donor >= 0).sum(-1).cpu().numpy())
            onehot = nn.functional.one_hot(donor.clamp(min=0), donor.shape[1]) * (donor >= 0)[
                ..., None
            ]
            parts.setdefault("donors", []).append(onehot.sum(2).cpu().numpy())
        _append(parts, "agreement", getattr(out, "agreement", None))
        steps = getattr(out, "steps", None) or []
        if len(steps) > 1:
            imp = torch.stack([s.modality_importance for s in steps], dim=1)
            _append(parts, "importance_steps", imp)
            rep = torch.stack([(s.replaced_from >= 0).sum(-1) for s in steps], dim=1)
            parts.setdefault("replaced_steps", []).append(rep.cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def predict(
    checkpoint: dict[str, Any], cohort: Cohort, device: str = "auto", precision: str = "auto"
) -> dict[str, np.ndarray]:
    """Predictions of a trained checkpoint on ``cohort``.

    Returns ``prob`` (P, C) or ``risk`` (P,), plus whatever :func:`run_model` exported besides the
    logits (``importance``, ``replaced``, ``agreement``, ... for AMC; nothing for a model that
    returns None for them).
    """
    dev = select_device(device)
    dtype = autocast_dtype(dev, precision)
    model = load_model(checkpoint, dev)
    out = run_model(
        model,
        model_inputs(cohort, checkpoint["scalers"]),
        torch.from_numpy(cohort.present),
        checkpoint["fused"],
        dev,
        dtype,
    )
    logits = torch.from_numpy(out.pop("logits"))
    if cohort.task == "classification":
        out["prob"] = torch.softmax(logits, -1).numpy()
    else:
        out["risk"] = risk_score(logits).numpy()
    return out
