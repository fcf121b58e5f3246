"""AMC model: public API."""

from amc.model.attention import DifferentialAttention, VanillaAttention
from amc.model.fusion import modality_importance, replace_uninformative_tokens, token_scores
from amc.model.moe import DenseFFN, SparseMoE, load_balancing_loss
from amc.model.network import AMC, AMCConfig, AMCOutput, FusionStep

__all__ = [
    "AMC",
    "AMCConfig",
    "AMCOutput",
    "DenseFFN",
    "DifferentialAttention",
    "FusionStep",
    "SparseMoE",
    "VanillaAttention",
    "load_balancing_loss",
    "modality_importance",
    "replace_uninformative_tokens",
    "token_scores",
]
