"""Asynchronous Noise Sampling (X-WAM §3.4) and the ablation's schedules; asynchronous UniPC inference.

Training times per sample, before the timestep shift ``phi(u) = s u / (1 + (s - 1) u)`` (s = 5),
for the observation group (video; depth follows the video tokens) and the action group (action
and state, which shares the action time):

- ``ans`` (X-WAM, ``use_decoupled_sampling`` + ``use_joint_distribution`` in the code): with
  probability ``p`` (0.5) the action is already decoded: ``u_a = 0`` and ``u_O ~ U(0, 1)``, and the
  action/state losses of that sample are masked; otherwise ``u_a ~ U(0, 1)`` and
  ``u_O = u_a + (1 - u_a) b`` with ``b ~ Beta(1.5, 1)``, so video is always at least as noisy as
  the action (``t_O >= t_a``), matching inference where actions finish first.
- ``decoupled``: ``u_O`` and ``u_a`` independent uniforms (the code's DreamZero-style option).
- ``synchronous``: one ``u ~ U(0, 1)`` for both (the code's ``rf_distribution: uniform``).

Losses are unweighted MSE (``uniform``). A stream's loss averages over the samples in which it
is trained, as the code's ``sum(err * mask) / sum(mask)``: samples whose units all sit at t = 0
(ANS's clean-action case) weigh 0 and the others are scaled up to keep that mean.

Inference (``XWAMRunner.forward``): one phase over video, action and state with diffusers' UniPC
on the shifted grid; actions and state finish in ``T_a`` steps (10) and stay clean while the video
continues to ``T_O`` (50). ``early_stop`` (the default plan, used by ``predict_action``) ends the
phase after ``T_a`` steps and returns actions only; ``plan(early_stop=False)`` is the full mode.
Synchronous inference is ``action_steps = video_steps``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from wamzoo.composition import caps
from wamzoo.interfaces import Phase
from wamzoo.nn.flow_matching import shift_time
from wamzoo.schedulers import FlowMatchingScheduler

SCHEDULES = ("ans", "decoupled", "synchronous")


def sample_beta(shape: tuple[int, ...], alpha: float, beta: float, generator: torch.Generator | None = None) -> Tensor:
    """``Beta(alpha, beta)`` samples; ``beta = 1`` by the inverse CDF ``U^(1/alpha)``, else two gammas."""
    if beta == 1.0:
        return torch.rand(shape, generator=generator) ** (1.0 / alpha)
    x = torch._standard_gamma(torch.full(shape, float(alpha)), generator=generator)
    y = torch._standard_gamma(torch.full(shape, float(beta)), generator=generator)
    return x / (x + y).clamp(min=1e-6)


def sample_ans(batch: int, p_clean: float = 0.5, alpha: float = 1.5, beta: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Unshifted ANS times ``(u_obs, u_action, clean)`` for ``batch`` samples (see module doc)."""
    u_a = torch.rand(batch, generator=generator)
    b = sample_beta((batch,), alpha, beta, generator)
    u_free = torch.rand(batch, generator=generator)
    clean = torch.rand(batch, generator=generator) < p_clean
    u_obs = torch.where(clean, u_free, u_a + (1 - u_a) * b)
    return u_obs, torch.where(clean, torch.zeros_like(u_a), u_a), clean


class XWAMScheduler(FlowMatchingScheduler):
    """ANS / decoupled / synchronous training times; UniPC inference with ``T_a`` action steps.

    Args:
        schedule: ``"ans"`` (X-WAM), ``"decoupled"`` or ``"synchronous"``.
        p_clean: ANS probability of the clean-action case.
        beta: ``(alpha, beta)`` of the ANS video offset (1.5, 1).
        shift: timestep shift applied after sampling (and of the inference grids).
        video_steps, action_steps: ``T_O`` and ``T_a``.
        early_stop: the default plan stops after ``T_a`` steps (actions only).
        obs_group, action_group: timestep groups of the observation and action streams.
        video_streams, action_streams: stream names in the inference phase.
    """

    #: ANS couples the video's noise level with the actions': it needs a world model that denoises video.
    requires = {"world_model": caps("video")}

    def __init__(self, schedule: str = "ans", p_clean: float = 0.5, beta: Sequence[float] = (1.5, 1.0),
                 shift: float = 5.0, video_steps: int = 50, action_steps: int = 10, early_stop: bool = True,
                 obs_group: str = "obs", action_group: str = "action", video_streams: Sequence[str] = ("video",),
                 action_streams: Sequence[str] = ("action", "state"), solver: str = "unipc",
                 infer_grid: Sequence[float] | None = None):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not 0.0 <= p_clean <= 1.0:
            raise ValueError(f"p_clean must be in [0, 1], got {p_clean}")
        if action_steps < 1 or video_steps < 1:
            raise ValueError("video_steps and action_steps must be >= 1")
        self.schedule, self.p_clean, self.beta = schedule, float(p_clean), tuple(float(b) for b in beta)
        self.video_steps, self.action_steps, self.early_stop = int(video_steps), int(action_steps), bool(early_stop)
        self.obs_group, self.action_group = obs_group, action_group
        self.video_streams, self.action_streams = tuple(video_streams), tuple(action_streams)
        steps = {**{n: self.video_steps for n in self.video_streams}, **{n: self.action_steps for n in self.action_streams}}
        super().__init__(shift=shift, sampling="shifted-uniform", loss_weighting="uniform", phases=[steps],
                         solver=solver, infer_shift=shift, infer_grid=infer_grid)

    # -- training ---------------------------------------------------------------------------
    def draw_unshifted(self, batch: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(u_obs, u_action)`` before the shift."""
        if self.schedule == "ans":
            u_obs, u_a, _ = sample_ans(batch, self.p_clean, *self.beta, generator=generator)
        elif self.schedule == "decoupled":
            u_obs, u_a = torch.rand(batch, generator=generator), torch.rand(batch, generator=generator)
        else:
            u_obs = torch.rand(batch, generator=generator)
            u_a = u_obs.clone()
        return u_obs, u_a

    def draw_groups(self, shapes: Mapping[str, tuple[int, ...]], generator, device) -> dict[str, Tensor]:
        unknown = set(shapes) - {self.obs_group, self.action_group}
        if unknown:
            raise ValueError(f"X-WAM couples the groups {self.obs_group!r} and {self.action_group!r}; streams"
                             f" also use {sorted(unknown)}")
        if any(len(s) != 1 for s in shapes.values()):
            raise ValueError("X-WAM draws one time per sample per group; streams must not set `chunk`")
        batch = next(iter(shapes.values()))[0]
        u_obs, u_a = self.draw_unshifted(batch, generator)
        t = {self.obs_group: shift_time(u_obs, self.shift), self.action_group: shift_time(u_a, self.shift)}
        return {g: t[g].to(device) for g in shapes}

    def loss_weight(self, name: str, t: Tensor) -> Tensor:
        """1 on units with ``t > 0``; samples with none weigh 0, the others ``B / #trained samples``."""
        live = t > 0
        trained = live.any(1)
        scale = t.shape[0] / trained.sum().clamp(min=1)
        return live.float() * scale

    # -- inference --------------------------------------------------------------------------
    def plan(self, early_stop: bool | None = None) -> list[Phase]:
        stop = self.early_stop if early_stop is None else early_stop
        steps = dict(self.phases[0].steps)
        a = max(steps[n] for n in self.action_streams if n in steps)
        return [Phase(steps, stop=a if stop and a < max(steps.values()) else None)]
