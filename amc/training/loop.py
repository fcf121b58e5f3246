"""Training one AMC model on one split: train-split-only preprocessing, fusion after warm-up,
validation-based model selection with early stopping, resumable checkpoints, per-epoch history.

The test split is never looked at here: :func:`amc.inference.predict` is called on it once,
afterwards.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from amc.baselines import build_model
from amc.config import (
    HEADS_POOLINGS,
    TrainSettings,  # built from the params schema; re-exported
)
from amc.data.cohort import Cohort, check_modalities_in_splits
from amc.data.preprocess import fit_preprocessing, input_sizes, model_inputs
from amc.inference import load_model, predict, run_model  # noqa: F401  (re-exported)
from amc.model import AMCConfig
from amc.model.heads import discretize_time, risk_score, survival_bin_edges
from amc.model.losses import classification_loss, survival_nll
from amc.runtime import autocast, autocast_dtype, select_device
from amc.scoring import harrell_c, macro_precision_recall_f1
from amc.training import resume
from amc.training.optim import FusedAdamW
from amc.training.seed import seed_everything

log = logging.getLogger(__name__)


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
    task: str,
    logits: torch.Tensor,
    targets: dict[str, torch.Tensor],
    idx,
    reduction: str = "mean",
) -> torch.Tensor:
    if task == "classification":
        return classification_loss(logits, targets["label"][idx], reduction)
    return survival_nll(logits, targets["bin"][idx], targets["event"][idx], reduction)


def _modality_heads_loss(
    task: str,
    modality_logits: torch.Tensor,
    present: torch.Tensor,
    targets: dict[str, torch.Tensor],
    idx: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over modalities of each modality head's task loss on the patients that have it, as
    late fusion's unimodal models would be trained. (B, M, K), (B, M) bool -> scalar.

    ``weights`` (B, M), optional (``loss.modality_heads_weights: importance``): the detached
    weights that mixed the heads; head m's loss is then the mean over its patients weighted by
    ``weights[:, m]`` (renormalised over the batch), so a head does not learn from the patients
    whose modality was flagged as poor, as the oracle never listens to a dropped modality. A
    modality whose patients all have weight 0 in the batch adds no term.
    """
    idx = idx.to(present.device)
    losses = []
    for m in range(modality_logits.shape[1]):
        rows = present[:, m]
        if not rows.any():
            continue
        if weights is None:
            losses.append(_task_loss(task, modality_logits[rows, m], targets, idx[rows]))
            continue
        w = weights[rows, m].detach().float()
        if w.sum() <= 0:
            continue
        per_patient = _task_loss(task, modality_logits[rows, m], targets, idx[rows], "none")
        losses.append((w * per_patient).sum() / w.sum())
    return torch.stack(losses).mean() if losses else modality_logits.sum() * 0.0


def validation_score(task: str, logits: np.ndarray, cohort: Cohort) -> float:
    """Model-selection score: macro F1 (classification) or Harrell's C-index (survival).

    Computed with :mod:`amc.scoring` (scikit-learn's and lifelines' definitions), the same
    numbers as :mod:`amc.evaluation.metrics` reports, so training does not import the evaluation
    floor.
    """
    if task == "classification":
        pred = torch.softmax(torch.from_numpy(logits), -1).numpy().argmax(axis=1)
        return macro_precision_recall_f1(cohort.labels, pred)[2]
    risk = risk_score(torch.from_numpy(logits)).numpy().astype(np.float64).reshape(-1)
    score = harrell_c(cohort.time, cohort.event, risk)
    if math.isnan(score):
        log.warning("validation C-index undefined: no comparable pairs; NaN")
    return score


@dataclass
class _Run:
    """Everything one training run is built from (see :func:`_build_run`)."""

    model: torch.nn.Module
    optimizer: FusedAdamW
    config: AMCConfig
    method: str
    method_options: dict[str, Any]
    scalers: dict
    cuts: np.ndarray | None
    fusion_on: bool
    select_from: int
    x_train: dict[str, torch.Tensor]
    p_train: torch.Tensor
    y_train: dict[str, torch.Tensor]
    x_val: dict[str, torch.Tensor]
    p_val: torch.Tensor
    val: Cohort


def train_model(
    cohort: Cohort,
    split: np.ndarray,
    model_config: dict[str, Any],
    settings: TrainSettings,
    seed: int,
    max_features: dict[str, int] | None = None,
    resume_path: Path | None = None,
    desc: str = "train",
    resume_every_s: float | None = None,
) -> dict[str, Any]:
    """Train on ``split == "train"``, select on ``split == "val"``; return the best checkpoint.

    Args:
        cohort: the whole dataset. split: (P,) ``train`` / ``val`` / ``test`` per patient.
        model_config: :class:`AMCConfig` fields except ``modalities`` / ``task`` / classes / bins,
            plus optionally ``method`` (default "amc", else a name of ``amc.baselines.METHODS``)
            and ``method_options`` (that method's options). Every method trains here, with the
            same losses, selection, early stopping and resume; only AMC has a fusion warm-up.
        resume_path: a file where the running state is saved (after an epoch, at most every
            ``resume_every_s`` seconds, default :data:`amc.training.resume.RESUME_EVERY_S`, and
            at the end); if it holds a state of the same config, training resumes from it.

    Returns:
        checkpoint dict (``state_dict``, ``config``, ``method``, ``method_options``, ``scalers``,
        ``cuts``, ``class_names``, ``best_epoch``, ``best_val``, ``fused``, ``history``), ready for
        :func:`predict`.
    """
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    generator = seed_everything(seed)
    device = select_device(settings.device)
    dtype = autocast_dtype(device, settings.precision)
    run = _build_run(cohort, split, model_config, settings, max_features, device, desc)
    signature = resume.signature(
        run.config, run.method, run.method_options, settings, seed, max_features, cohort, split
    )
    state = resume.restore(resume_path, signature, run.model, run.optimizer, generator, desc)
    weights = {"instance": settings.instance, "token": settings.token, "balance": settings.balance}
    if settings.modality_heads and run.method == "amc" and run.config.pooling in HEADS_POOLINGS:
        # Only a model with per-modality heads has this term (other histories stay as they were).
        weights["modality_heads"] = settings.modality_heads
    first = settings.epochs if state.get("done") else state["epoch"]
    save_resume = resume.saver(resume_path, resume_every_s, run, generator, signature)
    bar = tqdm(range(first, settings.epochs), desc=desc, leave=False, disable=None)
    for epoch in bar:
        fuse = run.fusion_on and epoch >= settings.warmup_epochs
        record = _train_epoch(run, cohort.task, settings, weights, fuse, generator, device, dtype)
        val_out = run_model(run.model, run.x_val, run.p_val, fuse, device, dtype)
        score = validation_score(cohort.task, val_out["logits"], run.val)
        record.update(epoch=epoch, val_score=score, fused=fuse)
        state["history"].append(record)
        if epoch >= run.select_from:
            _select(state, epoch, score, run.model)
        state["epoch"] = epoch + 1
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", val=f"{score:.3f}", best=f"{state['best_val']:.3f}"
        )
        _log_epoch(desc, epoch, settings.epochs, record, state)
        stop = state["stale"] >= settings.patience
        state["done"] = stop or epoch + 1 == settings.epochs
        save_resume(state)
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
    return _best_checkpoint(run, state, cohort, settings, seed)


def _build_run(
    cohort: Cohort,
    split: np.ndarray,
    model_config: dict[str, Any],
    settings: TrainSettings,
    max_features: dict[str, int] | None,
    device: torch.device,
    desc: str,
) -> _Run:
    """Train-split preprocessing, survival bins, the model and its optimizer, the split tensors."""
    check_modalities_in_splits(cohort, split, desc)
    train_idx = np.flatnonzero(split == "train")
    val_idx = np.flatnonzero(split == "val")
    train, val = cohort.subset(train_idx), cohort.subset(val_idx)
    scalers = fit_preprocessing(cohort, train_idx, max_features)
    config, method, method_options, cuts = resolve_model(cohort, train_idx, scalers, model_config)
    model = build_model(method, config, method_options).to(device)
    # torch.optim.AdamW(fused=True)'s kernel, without torch.optim's start-up import (optim.py)
    optimizer = FusedAdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    fusion_on = method == "amc" and config.fusion and config.layers >= 2
    return _Run(
        model=model,
        optimizer=optimizer,
        config=config,
        method=method,
        method_options=method_options,
        scalers=scalers,
        cuts=cuts,
        fusion_on=fusion_on,
        # Select only among epochs that fuse, so the chosen model is an AMC model (other
        # methods have no warm-up: selection from epoch 0).
        select_from=settings.warmup_epochs if fusion_on else 0,
        x_train=model_inputs(train, scalers),
        p_train=torch.from_numpy(train.present),
        y_train=_targets(train, cuts),
        x_val=model_inputs(val, scalers),
        p_val=torch.from_numpy(val.present),
        val=val,
    )


def resolve_model(
    cohort: Cohort,
    train_idx: np.ndarray,
    scalers: dict[str, Any],
    model_config: dict[str, Any],
) -> tuple[AMCConfig, str, dict[str, Any], np.ndarray | None]:
    """The model a run trains on ``cohort``: its config (input sizes from the preprocessing
    fitted on the training patients, classes or survival bins), method name and options, and
    the survival bin edges (None for classification). The efficiency stage measures exactly
    this model.

    ``model_config``: AMCConfig fields plus ``method`` / ``method_options``
    (:func:`amc.methods.training_config`); ``train_idx``: (P_train,) cohort rows.
    """
    config_kwargs = dict(model_config)
    method = config_kwargs.pop("method", "amc")
    method_options = dict(config_kwargs.pop("method_options", None) or {})
    cuts = None
    if cohort.task == "survival":
        # the training rows' times only: a Cohort.subset would copy every feature array
        time, event = cohort.time[train_idx], cohort.event[train_idx]
        cuts = survival_bin_edges(time, event, config_kwargs.get("num_bins", 4))
        config_kwargs["num_bins"] = len(cuts) + 1
    else:
        config_kwargs["num_classes"] = len(cohort.class_names)
    config = AMCConfig(modalities=input_sizes(cohort, scalers), task=cohort.task, **config_kwargs)
    return config, method, method_options, cuts


def _train_epoch(
    run: _Run,
    task_kind: str,
    settings: TrainSettings,
    weights: dict[str, float],
    fuse: bool,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, float]:
    """One pass over the training split; the mean of every loss term over its steps."""
    model, optimizer = run.model, run.optimizer
    model.train()
    targets = {k: v.to(device) for k, v in run.y_train.items()}
    # Running sums stay on the device: one host sync per epoch, not several per step.
    totals: dict[str, torch.Tensor] = {}
    steps = 0
    for idx in _batches(len(run.p_train), settings.batch_size, generator):
        batch = {k: v[idx].to(device) for k, v in run.x_train.items()}
        with autocast(device, dtype):
            out = model(batch, run.p_train[idx].to(device), fuse=fuse)
        task = _task_loss(task_kind, out.logits, targets, idx.to(device))
        if "modality_heads" in weights and getattr(out, "modality_logits", None) is not None:
            out.aux_losses["modality_heads"] = _modality_heads_loss(
                task_kind,
                out.modality_logits,
                run.p_train[idx].to(device),
                targets,
                idx,
                out.head_weights if settings.modality_heads_weights == "importance" else None,
            )
        # AMC's aux losses are weighted by the loss.* params; any other method's aux loss
        # carries its own coefficient (from its options) and is added as is.
        loss = task + sum(weights.get(k, 1.0) * v.float() for k, v in out.aux_losses.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        for key, value in (("loss", loss), ("task", task), *out.aux_losses.items()):
            value = value.detach().to(torch.float64)
            totals[key] = totals[key] + value if key in totals else value
        steps += 1
    record = dict.fromkeys(("loss", "task", *weights), 0.0)  # a method without L_I / L_T: 0
    if totals:
        means = (torch.stack(list(totals.values())) / max(steps, 1)).tolist()
        record.update(zip(totals, means, strict=True))
    return record


def _select(state: dict[str, Any], epoch: int, score: float, model: torch.nn.Module) -> None:
    """Keep the model of the best validation score so far; count epochs without improvement."""
    if score > state["best_val"] or state["best_state"] is None:
        state.update(
            best_val=score,
            best_epoch=epoch,
            stale=0,
            best_state=copy.deepcopy(model.state_dict()),
        )
    else:
        state["stale"] += 1


def _log_epoch(
    desc: str, epoch: int, epochs: int, record: dict[str, Any], state: dict[str, Any]
) -> None:
    if epoch % 10 == 0 or epoch + 1 == epochs:
        log.info(
            "%s: epoch %d/%d loss %.4f val %.4f (best %.4f at epoch %d)",
            desc,
            epoch + 1,
            epochs,
            record["loss"],
            record["val_score"],
            state["best_val"],
            state["best_epoch"] + 1,
        )


def _best_checkpoint(
    run: _Run, state: dict[str, Any], cohort: Cohort, settings: TrainSettings, seed: int
) -> dict[str, Any]:
    """The checkpoint of the selected epoch, ready for :func:`predict`."""
    best_fused = run.fusion_on and state["best_epoch"] >= settings.warmup_epochs
    return {
        "state_dict": state["best_state"],
        "config": asdict(run.config),
        "method": run.method,
        "method_options": run.method_options,
        "scalers": run.scalers,
        "cuts": run.cuts,
        "class_names": cohort.class_names,
        "modalities": cohort.modalities,
        "best_epoch": state["best_epoch"],
        "best_val": state["best_val"],
        "fused": best_fused,
        "history": state["history"],
        "seed": seed,
        "settings": asdict(settings),
    }
