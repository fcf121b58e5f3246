"""FusedAdamW: the same updates as torch.optim.AdamW(fused=True), resumable."""

import pytest
import torch

from amc.training.optim import FusedAdamW


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.GELU(), torch.nn.Linear(5, 3))


def _grads(model: torch.nn.Module, step: int) -> None:
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(9, 7, generator=g)
    model(x).pow(2).mean().backward()


def _step(model: torch.nn.Module, optimizer, step: int) -> None:
    optimizer.zero_grad()
    _grads(model, step)
    optimizer.step()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_matches_torch_adamw_step_for_step(weight_decay):
    ours, ref = _model(0), _model(0)
    opt = FusedAdamW(ours.parameters(), lr=0.01, weight_decay=weight_decay)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.01, weight_decay=weight_decay, fused=True)
    for step in range(5):
        for model, optimizer in ((ours, opt), (ref, ref_opt)):
            _step(model, optimizer, step)
        for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    ref_state = ref_opt.state_dict()["state"]
    for i, slot in opt.state_dict()["state"].items():
        torch.testing.assert_close(slot["exp_avg_sq"], ref_state[i]["exp_avg_sq"], rtol=0, atol=0)
        assert float(slot["step"]) == float(ref_state[i]["step"]) == 5


def test_close_to_the_default_adamw():
    ours, ref = _model(1), _model(1)
    opt = FusedAdamW(ours.parameters(), lr=0.01, weight_decay=0.01)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.01, weight_decay=0.01)
    for step in range(5):
        for model, optimizer in ((ours, opt), (ref, ref_opt)):
            _step(model, optimizer, step)
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resume_gives_the_same_parameters():
    straight, resumed = _model(2), _model(2)
    opt = FusedAdamW(straight.parameters(), lr=0.02)
    for step in range(4):
        _step(straight, opt, step)
    first = FusedAdamW(resumed.parameters(), lr=0.02)
    for step in range(2):
        _step(resumed, first, step)
    second = FusedAdamW(resumed.parameters(), lr=0.5)
    second.load_state_dict(first.state_dict())  # the saved lr wins
    for step in range(2, 4):
        _step(resumed, second, step)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_parameters_without_gradient_are_left_alone():
    model = _model(3)
    frozen = model[2].weight.detach().clone()
    opt = FusedAdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 7))[:, 0].sum().backward()
    model[2].weight.grad = None
    opt.step()
    torch.testing.assert_close(model[2].weight, frozen, rtol=0, atol=0)
    assert 2 not in opt.state and 0 in opt.state
