"""The one place where the pipeline meets the model registry (AMC and the baselines).

A run's ``family`` is ``amc`` or a baseline's name in ``amc.baselines.METHODS``. Training goes
through :func:`amc.training.loop.train_model` with ``method`` / ``method_options`` in the model
config (AMC needs neither); benchmarks build any method with :func:`build`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from amc.baselines import build_model
from amc.model import AMCConfig

#: AMCConfig fields a baseline is built from: the settings every method shares. The AMC-only
#: fields (experts, attention, fusion, ...) keep their defaults, so changing them cannot change a
#: baseline (whose pipeline stage does not depend on them).
SHARED_FIELDS = ("hidden", "heads", "layers", "tokens", "encoder_layers", "dropout", "encoders")


def build(family: str, config: AMCConfig, options: dict[str, Any] | None = None) -> nn.Module:
    """An untrained model of ``family`` for ``config`` (the registry's factory)."""
    return build_model(family, config, options or {})


def training_config(
    family: str, amc_fields: dict[str, Any], options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``model_config`` that ``train_model`` takes for a run of ``family``.

    ``amc_fields``: AMCConfig fields from the params (all of them for AMC and its variants);
    a baseline keeps only :data:`SHARED_FIELDS` (and ``num_bins``) and adds ``method`` /
    ``method_options``.
    """
    if family == "amc":
        return dict(amc_fields)
    shared = {k: v for k, v in amc_fields.items() if k in (*SHARED_FIELDS, "num_bins")}
    return {**shared, "method": family, "method_options": dict(options or {})}


def config_for(family: str, amc_fields: dict[str, Any], **shapes: Any) -> AMCConfig:
    """AMCConfig of a run (``shapes``: modalities, task, num_classes / num_bins)."""
    fields = training_config(family, amc_fields)
    fields.pop("method", None)
    fields.pop("method_options", None)
    return AMCConfig(**{**fields, **shapes})
