"""Inference samplers: thin wrappers over diffusers' flow-matching schedulers.

``FlowSampler("euler", steps=10, shift=5)`` walks Fast-WAM's grid ``phi(linspace(1, 0, steps + 1))``
with ``FlowMatchEulerDiscreteScheduler``; ``"unipc"`` uses ``UniPCMultistepScheduler`` with flow
sigmas (X-WAM). diffusers is imported on first use (it takes seconds to import).

The grid: the model is evaluated at ``phi(linspace(start, end, steps + 1)[:-1])`` with the shift
``phi(u) = s u / (1 + (s - 1) u)``, and the last step goes to 0. ``grid = (start, end)`` sets the end
points; by default each solver keeps diffusers' own, ``(1, 0)`` for Euler (Fast-WAM's code,
``WanContinuousFlowMatchScheduler.build_inference_schedule``) and ``(1, 1/1000)`` for UniPC
(``use_flow_sigmas``). The X-WAM release steps on ``(1 - 1/1000, 0)``. UniPC moves a first time of 1
to ``1 - 1e-6`` (diffusers does, to keep ``log(alpha)`` finite).

A grid's times are computed by diffusers once per ``(solver, steps, shift, grid)`` and kept. On the fast
path (:mod:`wamzoo.fastpath`) an Euler step is diffusers' update written out, ``x + (t_next - t) v`` in
float32 (the same numbers, without a scheduler object per call); the reference path steps diffusers'.
"""

from __future__ import annotations

import functools
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from wamzoo import fastpath

SOLVERS = ("euler", "unipc")
#: Default end points ``(start, end)`` of each solver's grid before the shift: diffusers' own.
GRIDS = {"euler": (1.0, 0.0), "unipc": (1.0, 1.0 / 1000)}


def check_grid(grid: Sequence[float] | None, solver: str, name: str = "grid") -> tuple[float, float]:
    """``(start, end)`` of the grid before the shift; ``None`` is the solver's default (:data:`GRIDS`)."""
    if grid is None:
        return GRIDS[solver]
    try:
        start, end = (float(g) for g in grid)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers [start, end] (the grid's end points before the shift),"
                         f" got {grid!r}") from None
    if not 0.0 <= end < start <= 1.0:
        raise ValueError(f"{name} must satisfy 0 <= end < start <= 1 (noise at 1, data at 0), got {list(grid)}")
    return start, end


class FlowSampler:
    """Integrates a velocity field from ``t`` near 1 to ``t = 0`` in ``steps`` steps.

    Args:
        solver: ``"euler"`` or ``"unipc"``.
        steps: number of model evaluations.
        shift: timestep shift ``s`` of the grid.
        grid: ``(start, end)``: times ``phi(linspace(start, end, steps + 1)[:-1])``, then 0 (default:
            the solver's, :data:`GRIDS`).
    """

    def __init__(self, solver: str = "euler", steps: int = 10, shift: float = 5.0,
                 grid: Sequence[float] | None = None):
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.solver, self.steps, self.shift = solver, int(steps), float(shift)
        self.grid = check_grid(grid, solver)
        self._scheduler = None  # diffusers' scheduler, made when a step needs it
        self.sigmas = _times(self.solver, self.steps, self.shift, self.grid)  # [steps + 1], noise to 0 (data)
        self.reset()

    def reset(self) -> None:
        """Restart at the first time (multistep solvers forget their history)."""
        self._scheduler = None
        self._i = 0

    def _diffusers(self):
        if self._scheduler is None:
            self._scheduler = _make(self.solver, self.shift, self.steps, self.grid)
        return self._scheduler

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
        i = self._i
        if self.solver == "euler" and self._scheduler is None and fastpath.enabled():
            out = (x.float() + (self.sigmas[i + 1] - self.sigmas[i]) * velocity.float()).to(x.dtype)
        else:
            scheduler = self._diffusers()
            timestep = scheduler.timesteps[i]
            out = scheduler.step(velocity.float(), timestep, x.float(), return_dict=False)[0].to(x.dtype)
        self._i += 1
        return out


def _make(solver: str, shift: float, steps: int, grid: tuple[float, float]):
    """diffusers' scheduler for ``solver``, set to the grid."""
    if solver == "euler":
        from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler

        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    else:
        from diffusers.schedulers.scheduling_unipc_multistep import UniPCMultistepScheduler

        scheduler = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                            use_flow_sigmas=True, flow_shift=shift, solver_order=2)
    start, end = grid
    scheduler.set_timesteps(sigmas=np.linspace(start, end, steps + 1)[:-1])
    return scheduler


@functools.lru_cache(maxsize=64)
def _times(solver: str, steps: int, shift: float, grid: tuple[float, float]) -> Tensor:
    """The ``steps + 1`` times a grid visits, from diffusers (read-only: shared by every sampler of the grid)."""
    return _make(solver, shift, steps, grid).sigmas.float()


__all__ = ["FlowSampler", "GRIDS", "SOLVERS", "check_grid", "torch"]
