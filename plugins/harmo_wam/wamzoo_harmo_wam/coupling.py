"""HarmoWAM's coupling: imagine the future, then let the gated experts read it.

HarmoWAM (method overview): the world model first predicts the future frames (5 denoising steps);
its latent is then read by the predictive expert (cross-attention) and the reactive expert
(pooled, with backbone features of the predicted frames), and the gate picks one of them.

- Video: the core's Mixture-of-Transformers pass over the world model's tokens alone, under
  ``mask`` (default: observed frames see themselves, future frames see all frames), so the observed
  frames' keys/values are cached while the future is denoised (``MoTCoupling.prefill``).
- Action phase (inference): :meth:`prefill` runs the latent pass once over the generated video,
  lets the gate route every sample and computes the reactive chunks; :meth:`step` integrates only
  the predictive expert's samples.
- Training: the experts read the latent of the future frames the frozen world model predicts
  (``train_frames="predicted"``, ``train_video_steps`` Euler steps from noise, as at inference) or
  of the ground-truth future (``"ground_truth"``, cheaper, no imagination at training).

>>> import wamzoo
>>> wamzoo.create("coupling", "harmo-wam.latent", train_frames="ground_truth")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wamzoo.composition import caps
from wamzoo.couplings import MoTCoupling
from wamzoo.interfaces import Codec

from wamzoo_harmo_wam.world_model import Latent, clean, imagine, world_latent

VIDEO_MASK = {"video.cond -> video.cond": "all", "video.future -> video.*": "all"}
TRAIN_FRAMES = ("predicted", "ground_truth")


@dataclass
class Imagination:
    """What the experts read: the world model's latent and the frames around it (handed to the action
    expert in training through ``cond.put``; ``cond.get(Imagination)``)."""

    latent: Latent
    video: Tensor    # [B, F, V, C, h, w] clean video latents (observed + predicted)
    current: Tensor  # [B, V, 3, H, W] the current frame, pixels in [0, 1]
    n_obs: int       # observed latent frames
    codec: Codec | None

    def future(self, frames: int) -> Tensor:
        """The last ``frames`` predicted frames ``[B, frames, V, 3, H, W]``, decoded to pixels."""
        if self.codec is None:
            raise ValueError("decoding predicted frames needs the policy's codec (Conditioning.codec)")
        if self.video.shape[1] <= self.n_obs:
            raise ValueError("the video holds no predicted frame: HarmoWAM generates the video first"
                             " (scheduler.phases: [{video: N}, {action: M}])")
        pixels = self.codec.decode(self.video)
        tf = self.codec.temporal_factor  # causal temporal compression: n latent frames <-> 1 + tf (n - 1) frames
        predicted = pixels.shape[1] - (1 + tf * (self.n_obs - 1) if tf > 1 else self.n_obs)
        if predicted < frames:
            raise ValueError(f"the reactive expert reads {frames} predicted frame(s) but the world model predicts"
                             f" {predicted}; lower reactive.future_frames")
        return pixels[:, -frames:]


@dataclass
class Routing:
    """Prefilled context of the action phase."""

    imagination: Imagination
    predictive: Tensor  # [B] bool: samples the predictive expert serves


class HarmoCoupling(MoTCoupling):
    """Video generation, then the gated experts reading the world model's latent.

    Args:
        mask: attention rules among the world model's token groups (``video.cond``, ``video.future``).
        train_frames: ``"predicted"`` (default) or ``"ground_truth"``: the future frames the experts
            read in training.
        train_video_steps: Euler steps of that training-time imagination (inference: the scheduler's
            video phase).
        train_shift: timestep shift of its grid.
        grad_checkpoint: recompute each world-model layer in the backward pass (stage 1).
    """

    requires = {"world_model": caps("tokens"), "action_expert": caps("latent-reader")}
    uncached_reference = False  # the action phase's prefill routes every sample once (the gate)

    def __init__(self, mask: dict[str, str] | None = None, train_frames: str = "predicted",
                 train_video_steps: int = 5, train_shift: float = 5.0, grad_checkpoint: bool = False):
        if train_frames not in TRAIN_FRAMES:
            raise ValueError(f"train_frames must be one of {', '.join(TRAIN_FRAMES)}, got {train_frames!r}")
        super().__init__(dict(mask or VIDEO_MASK), grad_checkpoint)
        self.train_frames, self.train_video_steps, self.train_shift = train_frames, int(train_video_steps), train_shift

    def imagination(self, world_model, video, x: Tensor, cond) -> Imagination:
        """Latent of the clean video ``x`` (observed + future units of ``video``)."""
        batch = cond.batch
        n_obs = int(video.cond[0].sum())
        return Imagination(world_latent(world_model, self.rules, clean(video, x), cond), x,
                           batch.rgb_float()[:, batch.n_obs - 1], n_obs, cond.codec)

    # -- training ---------------------------------------------------------------------------
    def forward(self, world_model, action_expert, streams, cond):
        video = streams["video"]
        out = super().forward(world_model, action_expert, streams, cond) if video.denoised and cond.needs("video") else {}
        if action_expert.wants_imagination(streams, cond):
            x = video.x0 if video.x0 is not None else video.x
            if self.train_frames == "predicted":
                x = imagine(self, world_model, action_expert, clean(video, x), cond, self.train_video_steps,
                            self.train_shift)
            imagination = self.imagination(world_model, video, x, cond)
            cond.put(imagination)
            if action_expert.uses("predictive") and cond.needs("action"):
                out["action"] = action_expert.predictive_velocity(streams["action"], imagination, cond)
        return out

    # -- inference --------------------------------------------------------------------------
    def prefill(self, world_model, action_expert, streams, cond, active):
        if "action" not in active:
            return super().prefill(world_model, action_expert, streams, cond, active)
        if "video" in active:
            raise ValueError("HarmoWAM generates the future video before the actions; use scheduler.phases"
                             " [{video: N}, {action: M}] (got video and action in one phase)")
        video = streams["video"]
        imagination = self.imagination(world_model, video, video.x, cond)
        return Routing(imagination, action_expert.route(streams, imagination, cond))

    def step(self, world_model, action_expert, streams, cond, active, context):
        if isinstance(context, Routing):
            return {"action": action_expert.predictive_velocity(streams["action"], context.imagination, cond,
                                                                context.predictive)}
        return super().step(world_model, action_expert, streams, cond, active, context)

    def extra_repr(self) -> str:
        return f"train_frames={self.train_frames!r}, train_video_steps={self.train_video_steps}"
