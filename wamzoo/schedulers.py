"""Flow-matching scheduler: training timesteps per stream group and the inference plan.

Training (Fast-WAM §3.2 and its public code): per sample, each timestep group (``obs``,
``action``) draws its own time, ``t = phi(u)`` with ``u ~ U(0, 1)`` (``sampling="shifted-uniform"``,
the code) or ``u = sigmoid(n)``, ``n ~ N(m, s)`` (``"logit-normal"``, the paper). Streams with a
``chunk`` draw one time per chunk (AHA-WAM). Conditioning units get ``t = 0``. The loss weight is
the code's Gaussian bump (:class:`~wamzoo.nn.flow_matching.BumpWeight`) or uniform.

Inference: ``phases`` lists which streams are denoised together and in how many steps, e.g.
``[{action: 10}]`` (Fast-WAM), ``[{video: 10}, {action: 10}]`` (IDM), ``[{video: 10, action: 10}]``
(Joint); samplers are diffusers' Euler or UniPC (:mod:`wamzoo.samplers`) at the times
``phi(linspace(start, end, steps + 1)[:-1])``, then 0, with ``infer_grid = [start, end]`` (default:
the solver's).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from wamzoo.interfaces import Phase, Scheduler, Stream
from wamzoo.nn.flow_matching import BumpWeight, sample_logit_normal, sample_shifted_uniform
from wamzoo.samplers import SOLVERS, FlowSampler, check_grid

SAMPLINGS = ("shifted-uniform", "logit-normal")
WEIGHTINGS = ("bump", "uniform")


class FlowMatchingScheduler(Scheduler):
    """Independent flow-matching times per stream group; phased inference with Euler or UniPC.

    Args:
        shift: timestep shift ``s`` used in training (Wan: 5).
        sampling: ``"shifted-uniform"`` (Fast-WAM code) or ``"logit-normal"`` (Fast-WAM paper).
        logit_mean, logit_std: parameters of the logit-normal.
        loss_weighting: ``"bump"`` (Fast-WAM code) or ``"uniform"``.
        phases: inference phases, a list of ``{stream: steps}``.
        solver: ``"euler"`` or ``"unipc"``.
        infer_shift: timestep shift of the inference grid.
        infer_grid: ``[start, end]``, end points of the inference grid before the shift (default: the
            solver's, :data:`wamzoo.samplers.GRIDS`; the X-WAM release: ``[0.999, 0]``).
    """

    def __init__(self, shift: float = 5.0, sampling: str = "shifted-uniform", logit_mean: float = 0.0,
                 logit_std: float = 1.0, loss_weighting: str = "bump",
                 phases: Sequence[Mapping[str, int]] = ({"action": 10},), solver: str = "euler",
                 infer_shift: float = 5.0, infer_grid: Sequence[float] | None = None):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if loss_weighting not in WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {WEIGHTINGS}, got {loss_weighting!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if not phases or any(not p for p in phases):
            raise ValueError("phases must be a non-empty list of non-empty {stream: steps} mappings")
        self.shift, self.sampling = float(shift), sampling
        self.logit_mean, self.logit_std = float(logit_mean), float(logit_std)
        self.loss_weighting, self.solver, self.infer_shift = loss_weighting, solver, float(infer_shift)
        self.infer_grid = None if infer_grid is None else check_grid(infer_grid, solver, "infer_grid")
        self.phases = [Phase({str(k): int(v) for k, v in dict(p).items()}) for p in phases]
        self._bump = BumpWeight(self.shift)

    # -- training ---------------------------------------------------------------------------
    def draw(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """Times for one group: ``shape`` is ``[B]`` or ``[B, chunks]``."""
        if self.sampling == "shifted-uniform":
            return sample_shifted_uniform(shape, self.shift, generator).to(device)
        return sample_logit_normal(shape, self.shift, self.logit_mean, self.logit_std, generator).to(device)

    def draw_groups(self, shapes: Mapping[str, tuple[int, ...]], generator, device) -> dict[str, Tensor]:
        """One draw per group (subclasses couple groups, e.g. X-WAM's ANS)."""
        return {g: self.draw(shape, generator, device) for g, shape in shapes.items()}

    def sample_timesteps(self, streams, generator=None):
        denoised = {k: s for k, s in streams.items() if s.denoised}
        shapes: dict[str, tuple[int, ...]] = {}
        for name, s in denoised.items():
            shape = (s.batch_size,) if s.chunk is None else (s.batch_size, -(-s.units // s.chunk))
            if shapes.setdefault(s.group, shape) != shape:
                raise ValueError(f"streams of group {s.group!r} disagree on chunking ({shapes[s.group]} vs {shape})")
        device = next(iter(denoised.values())).x.device if denoised else None
        draws = self.draw_groups(shapes, generator, device)
        for s in denoised.values():
            s.t = self._expand(draws[s.group], s)
        for s in streams.values():
            if not s.denoised and s.t is None:  # a conditioning-only stream keeps a time set by its producer
                s.t = torch.zeros(s.cond.shape, device=s.x.device)

    @staticmethod
    def _expand(draw: Tensor, s: Stream) -> Tensor:
        t = draw[:, None].expand(-1, s.units) if draw.ndim == 1 else draw.repeat_interleave(s.chunk, 1)[:, : s.units]
        return torch.where(s.cond, torch.zeros_like(t), t)

    def loss_weight(self, name, t):
        return self._bump(t) if self.loss_weighting == "bump" else torch.ones_like(t)

    # -- inference --------------------------------------------------------------------------
    def plan(self):
        return list(self.phases)

    def sampler(self, name, steps):
        return FlowSampler(self.solver, steps, self.infer_shift, self.infer_grid)
