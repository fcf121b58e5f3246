"""Training one AMC model on one split: train-split-only preprocessing, fusion after warm-up,
validation-based model selection with early stopping, resumable checkpoints, dvclive logs.

The test split is never looked at here: :func:`predict` is called on it once, afterwards.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from amc.data.cohort import Cohort, check_modalities_in_splits
from amc.data.preprocess import ModalityScaler, fit_scaler, output_dim
from amc.evaluation.metrics import classification_metrics, concordance_index
from amc.model import AMC, AMCConfig
from amc.model.heads import discretize_time, risk_score, survival_bin_edges
from amc.model.losses import classification_loss, survival_nll
from amc.training.device import autocast, autocast_dtype, select_device
from amc.training.seed import seed_everything

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Optimisation settings (params ``train`` and ``loss`` blocks)."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 30
    warmup_epochs: int = 5
    batch_size: int = 64
    patience: int = 10
    device: str = "auto"
    precision: str = "auto"
    num_threads: int = 0
    instance: float = 0.1
    token: float = 0.1
    balance: float = 0.01


def fit_preprocessing(
    cohort: Cohort, train_index: np.ndarray, max_features: dict[str, int] | None = None
) -> dict[str, ModalityScaler | None]:
    """Fit a scaler per vector modality on the training rows only (volumes: None)."""
    scalers: dict[str, ModalityScaler | None] = {}
    for m, name in enumerate(cohort.modalities):
        x = cohort.features[name]
        if x.ndim != 2:
            scalers[name] = None  # volumes are intensity-normalised per subject at extraction
            continue
        limit = (max_features or {}).get(name)
        scalers[name] = fit_scaler(x[train_index], cohort.present[train_index, m], limit)
    return scalers


def model_inputs(
    cohort: Cohort, scalers: dict[str, ModalityScaler | None]
) -> dict[str, torch.Tensor]:
    """Scaled float32 tensors per modality; rows of absent modalities are zero."""
    out = {}
    for m, name in enumerate(cohort.modalities):
        x = cohort.features[name]
        scaler = scalers[name]
        x = scaler.transform(x) if scaler is not None else x.astype(np.float32)
        x = np.where(cohort.present[:, m].reshape(-1, *([1] * (x.ndim - 1))), x, 0.0)
        if x.ndim == 4:
            x = x[:, None]  # (P, 1, X, Y, Z)
        out[name] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return out


def input_sizes(cohort: Cohort, scalers: dict[str, ModalityScaler | None]) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for name in cohort.modalities:
        x = cohort.features[name]
        scaler = scalers[name]
        sizes[name] = output_dim(scaler, x.shape[1]) if scaler is not None else (1, *x.shape[1:])
    return sizes


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if generator is not None and len(idx) < 2 and n >= 2:
            continue  # batch-norm and contrastive losses need >= 2 samples
        yield idx


def _targets(cohort: Cohort, cuts: np.ndarray | None) -> dict[str, torch.Tensor]:
    if cohort.task == "classification":
        return {"label": torch.from_numpy(cohort.labels.astype(np.int64))}
    return {
        "bin": torch.from_numpy(discretize_time(cohort.time, cuts)),
        "event": torch.from_numpy(cohort.event.astype(np.float32)),
    }


def _task_loss(
    task: str, logits: torch.Tensor, targets: dict[str, torch.Tensor], idx
) -> torch.Tensor:
    if task == "classification":
        return classification_loss(logits, targets["label"][idx])
    return survival_nll(logits, targets["bin"][idx], targets["event"][idx])


@torch.inference_mode()
def run_model(
    model: AMC,
    inputs: dict[str, torch.Tensor],
    present: torch.Tensor,
    fuse: bool,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Eval-mode forward over all rows: logits, and where the model gives them importance (P, M),
    token scores (P, M, N), replaced counts (P, M) and donors (P, M, M): ``donors[p, i, j]`` =
    tokens of modality i replaced by modality j's in the last fusion step."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"logits": []}
    for idx in _batches(len(present), batch_size, None):
        batch = {k: v[idx].to(device) for k, v in inputs.items()}
        with autocast(device, dtype):
            out = model(batch, present[idx].to(device), fuse=fuse)
        parts["logits"].append(out.logits.float().cpu().numpy())
        if getattr(out, "modality_importance", None) is not None:
            parts.setdefault("importance", []).append(out.modality_importance.float().cpu().numpy())
        if getattr(out, "token_scores", None) is not None:
            parts.setdefault("token_scores", []).append(out.token_scores.float().cpu().numpy())
        if getattr(out, "replaced_from", None) is not None:
            donor = out.replaced_from
            parts.setdefault("replaced", []).append((donor >= 0).sum(-1).cpu().numpy())
            m = donor.shape[1]
            onehot = torch.nn.functional.one_hot(donor.clamp(min=0), m) * (donor >= 0)[..., None]
            parts.setdefault("donors", []).append(onehot.sum(2).cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def validation_score(task: str, logits: np.ndarray, cohort: Cohort) -> float:
    """Macro F1 (classification) or Harrell's C-index (survival): higher is better."""
    if task == "classification":
        prob = torch.softmax(torch.from_numpy(logits), -1).numpy()
        return classification_metrics(cohort.labels, prob)["f1"]
    risk = risk_score(torch.from_numpy(logits)).numpy()
    return concordance_index(cohort.time, cohort.event, risk)


def train_model(
    cohort: Cohort,
    split: np.ndarray,
    model_config: dict[str, Any],
    settings: TrainSettings,
    seed: int,
    max_features: dict[str, int] | None = None,
    resume_path: Path | None = None,
    desc: str = "train",
) -> dict[str, Any]:
    """Train on ``split == "train"``, select on ``split == "val"``; return the best checkpoint.

    Args:
        cohort: the whole dataset. split: (P,) ``train`` / ``val`` / ``test`` per patient.
        model_config: :class:`AMCConfig` fields except ``modalities`` / ``task`` / classes / bins.
        resume_path: a file where the running state is saved after every epoch; if it exists
            and was written for the same config, training resumes from it.

    Returns:
        checkpoint dict (``state_dict``, ``config``, ``scalers``, ``cuts``, ``class_names``,
        ``best_epoch``, ``best_val``, ``fused``, ``history``), ready for :func:`predict`.
    """
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    generator = seed_everything(seed)
    device = select_device(settings.device)
    dtype = autocast_dtype(device, settings.precision)
    check_modalities_in_splits(cohort, split, desc)
    train_idx = np.flatnonzero(split == "train")
    val_idx = np.flatnonzero(split == "val")
    train, val = cohort.subset(train_idx), cohort.subset(val_idx)
    scalers = fit_preprocessing(cohort, train_idx, max_features)
    cuts = None
    config_kwargs = dict(model_config)
    if cohort.task == "survival":
        cuts = survival_bin_edges(train.time, train.event, config_kwargs.get("num_bins", 4))
        config_kwargs["num_bins"] = len(cuts) + 1
    else:
        config_kwargs["num_classes"] = len(cohort.class_names)
    config = AMCConfig(modalities=input_sizes(cohort, scalers), task=cohort.task, **config_kwargs)
    model = AMC(config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    fusion_on = config.fusion and config.layers >= 2
    # Select only among epochs that fuse, so the chosen model is an AMC model.
    select_from = settings.warmup_epochs if fusion_on else 0
    x_train, p_train = model_inputs(train, scalers), torch.from_numpy(train.present)
    x_val, p_val = model_inputs(val, scalers), torch.from_numpy(val.present)
    y_train = _targets(train, cuts)
    # A saved state is reused only for the same settings, data, split and library code.
    signature = {
        "config": asdict(config),
        "settings": asdict(settings),
        "seed": seed,
        "data": _fingerprint(cohort, split),
        "code": _code_fingerprint(),
    }
    state = {
        "epoch": 0,
        "best_val": -math.inf,
        "best_epoch": -1,
        "best_state": None,
        "stale": 0,
        "history": [],
    }
    if resume_path is not None and Path(resume_path).exists():
        saved = torch.load(resume_path, map_location="cpu", weights_only=False)
        if saved.get("signature") == signature:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            state = saved["state"]
            log.info("%s: resuming at epoch %d from %s", desc, state["epoch"], resume_path)
        else:
            log.info("%s: ignoring %s written for other settings", desc, resume_path)
    weights = {"instance": settings.instance, "token": settings.token, "balance": settings.balance}
    first = settings.epochs if state.get("done") else state["epoch"]
    bar = tqdm(range(first, settings.epochs), desc=desc, leave=False, disable=None)
    for epoch in bar:
        model.train()
        fuse = fusion_on and epoch >= settings.warmup_epochs
        totals = {"loss": 0.0, "task": 0.0, "instance": 0.0, "token": 0.0, "balance": 0.0}
        steps = 0
        for idx in _batches(len(train_idx), settings.batch_size, generator):
            batch = {k: v[idx].to(device) for k, v in x_train.items()}
            with autocast(device, dtype):
                out = model(batch, p_train[idx].to(device), fuse=fuse)
            task = _task_loss(
                cohort.task,
                out.logits,
                {k: v.to(device) for k, v in y_train.items()},
                idx.to(device),
            )
            loss = task + sum(weights[k] * out.aux_losses[k].float() for k in weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            totals["loss"] += loss.item()
            totals["task"] += task.item()
            for k in weights:
                totals[k] += float(out.aux_losses[k].detach())
            steps += 1
        val_out = run_model(model, x_val, p_val, fuse, device, dtype)
        score = validation_score(cohort.task, val_out["logits"], val)
        record = {k: v / max(steps, 1) for k, v in totals.items()}
        record.update(epoch=epoch, val_score=score, fused=fuse)
        state["history"].append(record)
        if epoch >= select_from:
            if score > state["best_val"] or state["best_state"] is None:
                state.update(
                    best_val=score,
                    best_epoch=epoch,
                    stale=0,
                    best_state=copy.deepcopy(model.state_dict()),
                )
            else:
                state["stale"] += 1
        state["epoch"] = epoch + 1
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", val=f"{score:.3f}", best=f"{state['best_val']:.3f}"
        )
        if epoch % 10 == 0 or epoch + 1 == settings.epochs:
            log.info(
                "%s: epoch %d/%d loss %.4f val %.4f (best %.4f at epoch %d)",
                desc,
                epoch + 1,
                settings.epochs,
                record["loss"],
                score,
                state["best_val"],
                state["best_epoch"] + 1,
            )
        stop = state["stale"] >= settings.patience
        state["done"] = stop or epoch + 1 == settings.epochs
        if resume_path is not None:
            _save_resume(resume_path, model, optimizer, generator, state, signature)
        if stop:
            log.info(
                "%s: early stop at epoch %d (best %d: %.4f)",
                desc,
                epoch,
                state["best_epoch"],
                state["best_val"],
            )
            break
    bar.close()
    best_fused = fusion_on and state["best_epoch"] >= settings.warmup_epochs
    return {
        "state_dict": state["best_state"],
        "config": asdict(config),
        "scalers": scalers,
        "cuts": cuts,
        "class_names": cohort.class_names,
        "modalities": cohort.modalities,
        "best_epoch": state["best_epoch"],
        "best_val": state["best_val"],
        "fused": best_fused,
        "history": state["history"],
        "seed": seed,
        "settings": asdict(settings),
    }


def _fingerprint(cohort: Cohort, split: np.ndarray) -> str:
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


def _code_fingerprint() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _save_resume(path, model, optimizer, generator, state, signature) -> None:
    from amc.data.store import atomic_path

    with atomic_path(path) as tmp:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "state": state,
                "signature": signature,
            },
            tmp,
        )


def load_model(checkpoint: dict[str, Any], device: torch.device) -> AMC:
    config = dict(checkpoint["config"])
    config["modalities"] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in config["modalities"].items()
    }
    model = AMC(AMCConfig(**config))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def predict(
    checkpoint: dict[str, Any], cohort: Cohort, device: str = "auto", precision: str = "auto"
) -> dict[str, np.ndarray]:
    """Predictions of a trained checkpoint on ``cohort``.

    Returns ``prob`` (P, C) or ``risk`` (P,) and, for models that give them (AMC),
    ``importance`` (P, M), ``replaced`` (P, M): how many tokens of each modality were replaced
    in the last fusion step, ``donors`` (P, M, M): by which modality, ``token_scores`` (P, M, N).
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
    exported = ("importance", "replaced", "token_scores", "donors")
    result = {k: out[k] for k in exported if k in out}
    logits = torch.from_numpy(out["logits"])
    if cohort.task == "classification":
        result["prob"] = torch.softmax(logits, -1).numpy()
    else:
        result["risk"] = risk_score(logits).numpy()
    return result
