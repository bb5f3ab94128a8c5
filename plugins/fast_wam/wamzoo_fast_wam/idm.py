"""IDM variant's conditioning video (Fast-WAM paper, IDM variant; code: ``FastWAMIDM.training_loss`` and
``FastWAMIDM.infer_joint``).

The IDM variant runs the video expert over two copies of the video, ``[noisy video, conditioning
video]``, and the action expert reads only the conditioning copy (an inverse-dynamics model on the
imagined future).

- Training: the conditioning copy is the clean video; with probability ``p = 0.5`` per sample it is
  re-noised at its own time ``t_c = phi(u)``, ``u ~ U(0, 1)`` (the video training distribution of
  the code). The first frame stays clean (``t = 0``). It is never denoised and has no loss.
- Inference: the future video is generated first (phase 1); the conditioning copy then becomes
  the generated video at ``t = 0`` and its keys/values are prefilled for the action steps.

Both RoPE grids are the same (the code concatenates the frequencies of both copies).
"""

from __future__ import annotations

import torch

from wamzoo.interfaces import Stream
from wamzoo.nn.flow_matching import interpolate, sample_shifted_uniform

from wamzoo_fast_wam.masks import COND_VIDEO


def conditioning_copy(video: Stream, train: bool, noise_prob: float = 0.5, shift: float = 5.0,
                      generator: torch.Generator | None = None) -> Stream:
    """The conditioning copy of the (clean) ``video`` stream; re-noised per sample with ``noise_prob`` in training."""
    x = video.x.detach().clone()
    B, U = video.cond.shape
    t = torch.zeros(B, U, device=x.device)
    if train and noise_prob > 0:
        dev = "cpu" if generator is not None else x.device
        noisy = torch.rand(B, generator=generator, device=dev).to(x.device) < noise_prob
        t_c = sample_shifted_uniform((B,), shift, generator, device=dev).to(x.device)
        t = torch.where(noisy[:, None] & ~video.cond, t_c[:, None], t)
        eps = torch.randn(x.shape, generator=generator, device=dev).to(x)
        x = interpolate(x, eps, t)
    return Stream(x=x, cond=video.cond.clone(), group=video.group, pad=video.pad, t=t, denoised=False)


def refresh_condition(streams: dict[str, Stream]) -> None:
    """Make the conditioning copy the current (generated) video at ``t = 0`` (inference, phase 2)."""
    if COND_VIDEO not in streams:
        return
    video, cond = streams["video"], streams[COND_VIDEO]
    cond.x = video.x.detach().clone()
    cond.t = torch.zeros_like(video.cond, dtype=torch.float32)
