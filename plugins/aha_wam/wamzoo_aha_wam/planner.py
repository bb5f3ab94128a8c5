"""AHA-WAM's world planner: Fast-WAM's video expert over a window of history frames (release: ``AHAWAM.prefill_video``, ``_build_history_video_frame_mask`` and the task config's
``num_history_frames: 6``, ``video_attention_mask_mode: per_frame_causal``,
``video_rope_frame_stride: action_video_freq_ratio = 8``).

- Tokens: the history frames (group ``video.hist``), the current frame (``video.cond``) and, in
  training, the future frames (``video.future``, denoised for video co-training). The batch's ``rgb``
  carries ``history + 1`` observed frames ``frame_stride`` steps apart (``data.n_obs``).
- Mask: per-frame causal (:data:`PER_FRAME_CAUSAL`): a frame sees every earlier frame and itself.
- RoPE: frames ``frame_stride`` steps apart are ``frame_stride / video_rope_frame_stride`` apart in
  time (the code indexes frames by step // 8). The current frame is at time 0, history frames before
  it, future frames after it, in training and at inference alike (the code uses episode-global
  times; attention between frames only sees differences, but OVCR's queries and the executor's
  action tokens read the current frame's rotated keys, which the fixed origin keeps as in training).
- Memory: at inference the coupling runs only the current frame against a rolling memory of the
  last ``history`` refresh frames (:mod:`~wamzoo_aha_wam.memory`), placed where this window's
  history frames sit.

History frames before an episode's start (the dataset repeats its first frame) are marked as padding
(the stream's ``pad``) and hidden from every other frame in training, as at inference, where the
memory is empty at an episode's start (the code masks them at inference only, so the planner's first
context of an episode was one training never showed; ``results/button.md``). History frames are run
without gradient and condition the current clip as a key/value prefix.

>>> planner = Planner(latent_channels=48, dim=32, num_layers=2, num_heads=2, head_dim=16, history=2)
"""

from __future__ import annotations

from dataclasses import replace

import torch

from wamzoo.interfaces import Conditioning, Stream
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import TokenSet

from wamzoo_fast_wam.video import FastWAMVideo

#: A frame sees every earlier frame and itself (the code's ``per_frame_causal`` mode).
PER_FRAME_CAUSAL = {"video.* -> video.*": "causal"}


class Planner(FastWAMVideo):
    """AHA-WAM's world planner: Fast-WAM's video DiT over history frames under a per-frame causal mask.

    Args:
        history: history frames of a window (paper: 6), kept in the coupling's rolling memory at
            inference; the data window observes ``history + 1`` frames (``data.n_obs``).
        frame_stride: environment steps between frames (filled from the data).
        video_rope_frame_stride: environment steps per RoPE time unit (the code: 8).
        **kwargs: :class:`~wamzoo_fast_wam.video.FastWAMVideo`'s arguments (paper: Wan2.2-TI2V-5B), but
            ``rope_frame_stride``, which is ``frame_stride / video_rope_frame_stride``.
    """

    def __init__(self, *, history: int = 6, frame_stride: int = 1, video_rope_frame_stride: float = 8.0, **kwargs):
        if history < 0 or frame_stride < 1 or video_rope_frame_stride <= 0:
            raise ValueError(f"need history >= 0, frame_stride >= 1, video_rope_frame_stride > 0; got {history},"
                             f" {frame_stride}, {video_rope_frame_stride}")
        super().__init__(rope_frame_stride=frame_stride / video_rope_frame_stride, **kwargs)
        self.history, self.frame_stride, self.video_rope_frame_stride = history, frame_stride, video_rope_frame_stride

    def make_streams(self, latents, n_obs, n_future, batch):
        if n_obs != self.history + 1:
            raise ValueError(f"the planner keeps {self.history} history frames, so it needs history + 1 ="
                             f" {self.history + 1} observed latent frames, one per observed frame; got {n_obs}"
                             " (set data.n_obs, and use a codec without temporal compression)")
        streams = super().make_streams(latents, n_obs, n_future, batch)
        video = streams["video"]
        if batch.frame_pad is not None and self.history:
            pad = batch.frame_pad[:, : video.units].to(video.x.device) & video.cond  # observed frames only
            streams["video"] = replace(video, pad=pad)
        return streams

    def token_set(self, s: Stream, name: str, cond: Conditioning) -> TokenSet:
        """Tokens of a latent stream; its last observed frame (the current one) sits at RoPE time 0."""
        ts = super().token_set(s, name, cond)
        grid = ts.meta["grid"]
        per = grid[1] * grid[2]
        n_obs = int(s.cond[0].sum())
        frame = torch.arange(grid[0]).repeat_interleave(per)
        groups = [TokenGroup(f"{name}.hist", (n_obs - 1) * per, name, True, frame[: (n_obs - 1) * per]),
                  TokenGroup(f"{name}.cond", per, name, True, frame[(n_obs - 1) * per: n_obs * per])]
        groups += [g for g in ts.groups if g.name.endswith(".future")]
        rope = self.dit.rope(grid, frame_offset=-(n_obs - 1) * self.rope_frame_stride,
                             frame_stride=self.rope_frame_stride, device=ts.x.device)
        return replace(ts, groups=[g for g in groups if g.size], rope=rope)
