"""HarmoWAM's world model: a video model that predicts future frames and exposes its latent.

HarmoWAM (world model; no public code) fine-tunes Wan2.2-TI2V-5B to predict the future frames of
the current observation in a few denoising steps (5) and lets both action experts read its
*latent*. wamzoo reuses any registered world model that joins a Mixture-of-Transformers pass
(``embed``/``head``; e.g. the core's ``dit.video`` or ``fast-wam.video``) and defines the latent
here, without touching the model:

- :func:`world_latent`: one pass of the world model over a clean video (observed frames and the
  predicted future, every unit at ``t = 0``) under the video's own attention mask; the latent is
  the final hidden state of every video token, ``[B, N, D]`` (``D`` = the world model's width);
- :func:`imagine`: the future frames sampled by the world model alone (Euler from noise, observed
  frames kept clean) through a coupling's ``prefill``/``step``, as at inference.

The future frames are generated at inference by the scheduler's first phase (``{video: 5}``); the
latent pass runs once afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wamzoo.interfaces import Conditioning, Phase, Stream, WorldModel
from wamzoo.nn.masks import MaskRules
from wamzoo.nn.mot import assign_indices, run_layers
from wamzoo.samplers import FlowSampler
from wamzoo.sampling import noise_streams, sample


@dataclass
class Latent:
    """The world model's latent of one video: final hidden states of its tokens."""

    tokens: Tensor  # [B, N, D]
    obs: Tensor     # [N] bool: tokens of observed (conditioning) frames

    def pooled(self) -> Tensor:
        """Mean over every token (observed and predicted frames) ``[B, D]``."""
        return self.tokens.mean(1)

    def pooled_obs(self) -> Tensor:
        """Mean over the observed frames' tokens ``[B, D]`` (observation features)."""
        return self.tokens[:, self.obs].mean(1)


def clean(video: Stream, x: Tensor) -> Stream:
    """A copy of ``video`` holding ``x`` with every unit at ``t = 0``."""
    return Stream(x=x, cond=video.cond, group=video.group, pad=video.pad,
                  t=torch.zeros(video.cond.shape, device=x.device), denoised=False)


def world_latent(world_model: WorldModel, rules: MaskRules, video: Stream, cond: Conditioning) -> Latent:
    """Final hidden states of ``world_model`` over the clean ``video`` (``t = 0`` everywhere).

    Gradients flow into the world model only if it has trainable parameters (HarmoWAM's stage 2
    freezes it, so the pass then runs without autograd).
    """
    trainable = any(p.requires_grad for p in world_model.parameters())
    with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
        sets = world_model.embed({"video": video}, cond)
        groups = assign_indices(sets)
        mask = rules.build(groups, device=video.x.device)
        hidden = run_layers(sets, mask, max(s.first_layer + len(s.blocks) for s in sets))
    keep = [i for i, s in enumerate(sets) if all(g.stream == "video" for g in s.groups)]
    if not keep:
        raise ValueError(f"{type(world_model).__name__}.embed produced no token set of the `video` stream")
    obs = torch.cat([torch.cat([torch.full((g.size,), g.cond, dtype=torch.bool) for g in sets[i].groups])
                     for i in keep]).to(video.x.device)
    return Latent(torch.cat([hidden[i] for i in keep], 1), obs)


@torch.no_grad()
def imagine(coupling, world_model: WorldModel, action_expert, video: Stream, cond: Conditioning, steps: int,
            shift: float, generator: torch.Generator | None = None) -> Tensor:
    """Future latent frames sampled in ``steps`` Euler steps (observed frames of ``video.x`` kept), by the
    policy's own sampling loop (:func:`wamzoo.sampling.sample`) over the video alone."""
    streams = {"video": Stream(x=video.x, cond=video.cond, group=video.group, pad=video.pad)}
    noise_streams(streams, {"video"}, generator)
    sample(coupling, world_model, action_expert, streams, cond, [Phase({"video": steps})],
           lambda name, k: FlowSampler("euler", k, shift))
    return streams["video"].x
