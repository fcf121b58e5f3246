"""AdamW through PyTorch's fused kernel, without ``torch.optim``'s start-up cost.

Why not ``torch.optim.AdamW``: every ``torch.optim`` optimizer imports ``torch._dynamo`` when it is
built (its ``add_param_group`` / ``zero_grad`` / ``state_dict`` are dynamo-disabled functions, and
the first call imports the compiler stack: sympy, torch.fx, torch.distributed). Measured on the
2-core reference machine: ``python -c "import torch"`` 4.2 s CPU, ``import torch, torch._dynamo``
8.0-8.8 s. The pipeline starts one process per (dataset, method) run — about a hundred in the
default ``dvc repro`` — so that import alone cost minutes of the cold-run budget. This class calls
the same fused kernel ``torch.optim.AdamW(fused=True)`` runs (``torch._fused_adamw_``, CPU and
CUDA), so the update is the library's arithmetic; ``tests/test_optim.py`` checks parameters and
state against ``torch.optim.AdamW(fused=True)`` step for step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class FusedAdamW:
    """Decoupled-weight-decay Adam (Loshchilov & Hutter) over one parameter group.

    Parameters
    ----------
    params : iterable of torch.Tensor
        The parameters to update (those whose ``grad`` is None at a step are skipped, as in
        ``torch.optim``).
    lr, betas, eps, weight_decay
        As ``torch.optim.AdamW``.

    ``state_dict`` / ``load_state_dict`` save and restore the moments and step counts (resume).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("FusedAdamW got no parameter that requires a gradient")
        self.lr, self.betas, self.eps, self.weight_decay = (
            float(lr),
            betas,
            float(eps),
            weight_decay,
        )
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (``set_to_none=False`` zeroes them in place)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def _slot(self, index: int, p: torch.Tensor) -> dict[str, torch.Tensor]:
        slot = self.state.get(index)
        if slot is None:
            slot = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
            self.state[index] = slot
        return slot

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient."""
        groups: dict[tuple[torch.device, torch.dtype], list[list[torch.Tensor]]] = {}
        for index, p in enumerate(self.params):
            if p.grad is None:
                continue
            slot = self._slot(index, p)
            lists = groups.setdefault((p.device, p.dtype), [[], [], [], [], []])
            for target, value in zip(
                lists, (p, p.grad, slot["exp_avg"], slot["exp_avg_sq"], slot["step"]), strict=True
            ):
                target.append(value)
        beta1, beta2 = self.betas
        for params, grads, exp_avgs, exp_avg_sqs, steps in groups.values():
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=self.lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    def state_dict(self) -> dict[str, Any]:
        """The moments and step counts by parameter index, and the hyper-parameters."""
        return {
            "state": {i: {k: v.clone() for k, v in slot.items()} for i, slot in self.state.items()},
            "hyper": {
                "lr": self.lr,
                "betas": tuple(self.betas),
                "eps": self.eps,
                "weight_decay": self.weight_decay,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same parameters, same order)."""
        saved = state["state"]
        if any(int(i) >= len(self.params) for i in saved):
            raise ValueError("optimizer state holds more parameters than the model")
        self.state = {}
        for i, slot in saved.items():
            p = self.params[int(i)]
            self.state[int(i)] = {k: v.to(p.device) for k, v in slot.items()}
        hyper = state.get("hyper", {})
        self.lr = float(hyper.get("lr", self.lr))
        self.betas = tuple(hyper.get("betas", self.betas))
        self.eps = float(hyper.get("eps", self.eps))
        self.weight_decay = hyper.get("weight_decay", self.weight_decay)
