"""The compared methods: the paper's seven baselines, late / early fusion and single-modality
models, all with AMC's interface (same inputs, ``present`` mask, encoders and heads).

``build_model(method, config, options)`` is the one factory the training loop uses; ``"amc"``
builds :class:`amc.model.AMC`. Method-specific knobs come in ``options`` (documented on each
class); unknown option keys are an error.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from amc.baselines.common import BaselineOutput
from amc.baselines.early import EarlyFusion
from amc.baselines.flexmoe import FlexMoE
from amc.baselines.fusemoe import FuseMoE
from amc.baselines.late import LateFusion
from amc.baselines.limoe import LiMoE
from amc.baselines.maggate import MAGGate
from amc.baselines.mult import MulT
from amc.baselines.muse import MUSE
from amc.baselines.single import SingleModality
from amc.baselines.tf import TensorFusion
from amc.model.network import AMC, AMCConfig

METHODS: dict[str, Callable[[AMCConfig, dict], nn.Module]] = {
    "tf": TensorFusion,
    "mult": MulT,
    "limoe": LiMoE,
    "fusemoe": FuseMoE,
    "flexmoe": FlexMoE,
    "maggate": MAGGate,
    "muse": MUSE,
    "late": LateFusion,
    "early": EarlyFusion,
    "single": SingleModality,
}


def build_model(method: str, config: AMCConfig, options: dict | None = None) -> nn.Module:
    """The model of ``method`` ("amc" or a key of :data:`METHODS`) for ``config``."""
    if method == "amc":
        if options:
            raise ValueError(f"method 'amc' takes no method_options, got {sorted(options)}")
        return AMC(config)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {['amc', *METHODS]}")
    return METHODS[method](config, dict(options or {}))


__all__ = ["METHODS", "BaselineOutput", "build_model"]
