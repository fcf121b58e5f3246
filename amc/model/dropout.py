"""Dropout with a cheaper random mask on CPU.

``torch.nn.functional.dropout`` on CPU draws one Bernoulli sample per element through a scalar
random-number loop (about 10 ns an element here, the largest single cost of a small AMC training
step). :func:`dropout` instead cuts 64-bit random integers into four 16-bit lanes and keeps an
element when its lane clears a threshold: the same expected mask (drop probability ``p`` rounded
to a multiple of 2^-16, survivors scaled by the exact inverse keep rate) for a fraction of the
cost. On other devices (fused kernels already) and outside training it is ``F.dropout``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_LANES = 2**16  # resolution of the drop probability on CPU


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` semantics, with the cheap CPU mask described above."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or not x.is_floating_point():
        return F.dropout(x, p, training)
    dropped = round(p * _LANES)
    if dropped == 0:
        return x
    numel = x.numel()
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=x.device)
    # Full 64-bit range: all four 16-bit lanes of a word are uniform (random_() alone leaves the
    # sign bit, i.e. one lane's top bit, at 0).
    words.random_(-(2**63), 2**63 - 1)
    lanes = words.view(torch.int16)[:numel].view(x.shape)
    keep = lanes >= dropped - _LANES // 2
    # where() rather than a product with the bool mask: mixed-dtype products are slow on CPU.
    return torch.where(keep, x * (_LANES / (_LANES - dropped)), 0.0)


class Dropout(nn.Dropout):
    """``nn.Dropout`` using :func:`dropout` (same ``p``, no parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


__all__ = ["Dropout", "dropout"]
