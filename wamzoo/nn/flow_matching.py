"""Flow-matching utilities shared by all four papers.

Convention (all four papers): ``z_t = (1 - t) z_0 + t eps`` with ``t`` in [0, 1]; the network
predicts the velocity ``eps - z_0``; sampling integrates from ``t = 1`` (noise) to ``t = 0``.
Timesteps are per unit (latent frame, action step), so conditioning units sit at ``t = 0``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def expand_t(t: Tensor, x: Tensor) -> Tensor:
    """Broadcast per-unit times ``[B, U]`` (or ``[B]``) over the trailing dims of ``x`` ``[B, U, ...]``."""
    return t.reshape(*t.shape, *([1] * (x.ndim - t.ndim))).to(x.dtype)


def interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """``z_t = (1 - t) x0 + t noise``."""
    t = expand_t(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The regression target ``noise - x0``."""
    return noise - x0


def shift_time(u: Tensor, shift: float) -> Tensor:
    """Timestep shift ``phi(u) = s u / (1 + (s - 1) u)`` (Wan convention, ``s = 5``)."""
    return shift * u / (1 + (shift - 1) * u)


def sample_shifted_uniform(shape: tuple[int, ...], shift: float, generator: torch.Generator | None = None,
                           device: torch.device | str | None = None) -> Tensor:
    """``t = phi(u)``, ``u ~ U(0, 1)`` (Fast-WAM's code)."""
    return shift_time(torch.rand(shape, generator=generator, device=device), shift)


def sample_logit_normal(shape: tuple[int, ...], shift: float = 1.0, mean: float = 0.0, std: float = 1.0,
                        generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """``t = phi(sigmoid(n))``, ``n ~ N(mean, std)`` (the logit-normal of Fast-WAM's paper, SD3)."""
    n = torch.randn(shape, generator=generator, device=device) * std + mean
    return shift_time(torch.sigmoid(n), shift)


class BumpWeight:
    """Fast-WAM's loss weight ``w(t) ∝ exp(-2 ((1000 t - 500) / 1000)^2) - y_min``, mean 1.

    ``y_min`` and the normaliser are taken over the shifted 1000-step training grid, as in the
    public code (``WanContinuousFlowMatchScheduler.training_weight``).
    """

    def __init__(self, shift: float = 5.0, steps: int = 1000):
        u = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)[:-1]
        y = self._bump(shift_time(u, shift))
        self.y_min = float(y.min())
        self.norm = float((y - self.y_min).mean())

    @staticmethod
    def _bump(t: Tensor) -> Tensor:
        return torch.exp(-2.0 * (t - 0.5) ** 2)

    def __call__(self, t: Tensor) -> Tensor:
        return (self._bump(t.float()) - self.y_min) / (self.norm + 1e-10)


def flow_loss(pred: Tensor, x0: Tensor, noise: Tensor, mask: Tensor, weight: Tensor | None = None) -> Tensor:
    """Masked, weighted MSE to the velocity target.

    ``mask`` and ``weight`` are per unit ``[B, U]``; the loss is averaged over each sample's valid
    units and then over the batch (samples with no valid unit contribute zero).
    """
    err = (pred.float() - velocity_target(x0, noise).float()) ** 2
    per_unit = err.flatten(2).mean(-1) if err.ndim > 2 else err
    m = mask.float()
    if weight is not None:
        per_unit = per_unit * weight
    return ((per_unit * m).sum(1) / m.sum(1).clamp(min=1.0)).mean()


def logit_normal_pdf(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Density of the logit-normal distribution (for tests of the sampler)."""
    logit = torch.log(t / (1 - t))
    return torch.exp(-((logit - mean) ** 2) / (2 * std**2)) / (std * math.sqrt(2 * math.pi) * t * (1 - t))
