"""Runtime choices shared by training, inference and feature extraction.

The one place that decides the device, the autocast precision and the CPU threads per worker;
it sits on the lowest floor so feature extractors and training both import it
(docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Literal

import torch

from amc.cores import available_cores  # re-exported: training sizes its workers with it
from amc.errors import InputError

log = logging.getLogger(__name__)


def select_device(device: Literal["auto", "cpu", "cuda"] | str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU. ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "train.device=cuda but no CUDA device is available",
            hint="use train.device=auto or cpu",
        )
    if device not in ("cpu", "cuda"):
        raise InputError(f"train.device={device!r} is not one of auto, cpu, cuda")
    return torch.device(device)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 autocast on CUDA for ``auto``/``bf16``; ``None`` (fp32) on CPU or for ``fp32``."""
    if precision not in ("auto", "fp32", "bf16"):
        raise InputError(f"train.precision={precision!r} is not one of auto, fp32, bf16")
    if precision == "fp32" or device.type != "cuda":
        return None
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on ``device``; a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as ``CUDA_VISIBLE_DEVICES`` entries ([] if none)."""
    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [d.strip() for d in listed.split(",") if d.strip()][: torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def threads_per_worker(workers: int, num_threads: int = 0) -> int:
    """Torch threads per worker: the cores shared out evenly, or ``num_threads`` if set, capped
    at that share so that the workers together never ask for more threads than there are cores
    (oversubscribed OpenMP threads spin-wait on each other)."""
    share = max(1, available_cores() // max(1, workers))
    if num_threads > share:
        log.warning(
            "train.num_threads=%d x %d worker(s) exceeds %d core(s): using %d thread(s) each",
            num_threads,
            workers,
            available_cores(),
            share,
        )
    return min(num_threads, share) if num_threads > 0 else share


def optimizer_options(device: torch.device) -> dict[str, bool]:
    """Extra ``torch.optim.Adam`` / ``AdamW`` arguments for ``device``: the fused kernel on CPU
    and CUDA (one kernel for all parameters instead of about ten small ops per parameter; the
    same update up to float rounding, and no host sync), torch's default elsewhere."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}
