"""The one place where the pipeline meets the model registry (AMC and the baselines).

A run's ``family`` is ``amc`` or a baseline's name in ``amc.baselines.METHODS``. Training goes
through :func:`amc.training.loop.train_model` with ``method`` / ``method_options`` in the model
config (AMC needs neither); :func:`amc.training.loop.resolve_model` turns it into the model's
config for a cohort (the efficiency stage builds every method that way).
"""

from __future__ import annotations

from typing import Any

#: AMCConfig fields a baseline is built from: the settings every method shares. The AMC-only
#: fields (experts, attention, fusion, ...) keep their defaults, so changing them cannot change a
#: baseline (whose pipeline stage does not depend on them).
SHARED_FIELDS = ("hidden", "heads", "layers", "tokens", "encoder_layers", "dropout", "encoders")


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
