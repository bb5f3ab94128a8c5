"""Inference samplers: thin wrappers over diffusers' flow-matching schedulers.

``FlowSampler("euler", steps=10, shift=5)`` walks Fast-WAM's grid ``phi(linspace(1, 0, steps + 1))``
with ``FlowMatchEulerDiscreteScheduler``; ``"unipc"`` uses ``UniPCMultistepScheduler`` with flow
sigmas (X-WAM). diffusers is imported on first use (it takes seconds to import).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

SOLVERS = ("euler", "unipc")


class FlowSampler:
    """Integrates a velocity field from ``t = 1`` to ``t = 0`` in ``steps`` steps."""

    def __init__(self, solver: str = "euler", steps: int = 10, shift: float = 5.0):
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.solver, self.steps, self.shift = solver, int(steps), float(shift)
        self._scheduler = _make(solver, shift)
        self.reset()

    def reset(self) -> None:
        """Restart at ``t = 1`` (multistep solvers forget their history)."""
        if self.solver == "euler":
            self._scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, self.steps + 1)[:-1].tolist())
        else:
            self._scheduler.set_timesteps(self.steps)
        self._i = 0

    @property
    def sigmas(self) -> Tensor:
        """The ``steps + 1`` times visited, from 1 (noise) to 0 (data)."""
        return self._scheduler.sigmas.float()

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[float]:
        return iter(self.sigmas[:-1].tolist())

    @property
    def t(self) -> float:
        """The current time (the model is evaluated here)."""
        return float(self.sigmas[self._i])

    def step(self, velocity: Tensor, x: Tensor) -> Tensor:
        """One step from ``t`` to the next time."""
        if self._i >= self.steps:
            raise RuntimeError("sampler already reached t = 0; call reset()")
        timestep = self._scheduler.timesteps[self._i]
        out = self._scheduler.step(velocity.float(), timestep, x.float(), return_dict=False)[0].to(x.dtype)
        self._i += 1
        return out


def _make(solver: str, shift: float):
    if solver == "euler":
        from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    from diffusers.schedulers.scheduling_unipc_multistep import UniPCMultistepScheduler

    return UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=shift, solver_order=2)


__all__ = ["FlowSampler", "SOLVERS", "torch"]
