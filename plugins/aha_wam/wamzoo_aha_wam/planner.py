"""AHA-WAM's world planner: Fast-WAM's video expert run at low frequency over a rolling memory
(release: ``AHAWAM.prefill_video``, ``_build_history_video_frame_mask`` and the task config's
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
- Memory: at inference only the current frame is run, against a :class:`RollingMemory` holding the
  per-layer keys/values of the last ``history`` refresh frames; its own keys/values then join the
  memory and the oldest frame is dropped. Refreshes are ``frame_stride`` steps apart, so before each
  one the remembered keys are rotated one frame back in time: memory frames sit exactly where
  training's history frames sit. The current frame's per-layer keys/values are the reusable
  layerwise context (:class:`PlannerContext`) the executor reads until the next refresh.

Like the code, history padding at the start of an episode is not masked in training (the dataset
repeats the first frame; the code masks frames before the episode start), and history frames are
run without gradient and condition the current clip as a key/value prefix.

>>> planner = Planner(latent_channels=48, dim=32, num_layers=2, num_heads=2, head_dim=16, history=2)
>>> context = planner.refresh(frame, cond)                                # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

from wamzoo.composition import caps
from wamzoo.interfaces import Conditioning, Stream
from wamzoo.nn.attention import KVCache
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import TokenSet, run_layers
from wamzoo.nn.rope import apply_rope, rope_angles_3d

from wamzoo_fast_wam.video import FastWAMVideo

#: A frame sees every earlier frame and itself (the code's ``per_frame_causal`` mode).
PER_FRAME_CAUSAL = {"video.* -> video.*": "causal"}


@dataclass
class PlannerContext:
    """The planner's layerwise context: per-layer keys/values ``[B, F, H, Dh]`` of one frame."""

    keys: list[Tensor]
    values: list[Tensor]
    #: Seconds the planner spent computing it (waiting for the executor excluded).
    seconds: float = 0.0


class RollingMemory:
    """Per-layer keys/values of the last ``size`` planner frames (a ring of ``size + 1`` frame slots).

    Frame slot ``i`` owns the global token indices ``[i * F, (i + 1) * F)``; adding a frame writes
    the next slot and drops the oldest once ``size`` frames are held (``KVCache.drop``).
    """

    def __init__(self, size: int, tokens_per_frame: int):
        self.size, self.tokens = size, tokens_per_frame
        self.cache = KVCache()
        self.slots: deque[int] = deque()
        self._next = 0

    def __len__(self) -> int:
        return len(self.slots)

    def slot_index(self, slot: int, device=None) -> Tensor:
        return torch.arange(slot * self.tokens, (slot + 1) * self.tokens, device=device)

    def next_slot(self) -> int:
        return self._next

    def shift(self, angles: Tensor) -> None:
        """Rotate every remembered key by the RoPE ``angles`` ``[1, head_dim / 2]`` (a shift in time)."""
        for layer in self.cache.keys:
            self.cache.keys[layer] = apply_rope(self.cache.keys[layer], angles)

    def add(self, record: KVCache, slot: int) -> None:
        """Keep the frame recorded in ``record`` (its keys carry ``slot``'s indices); forget the oldest."""
        for layer in record.keys:
            self.cache.append(layer, record.keys[layer], record.values[layer], record.index[layer])
        self.slots.append(slot)
        self._next = (slot + 1) % (self.size + 1)
        if len(self.slots) > self.size:
            self.slots.popleft()
            device = record.index[next(iter(record.index))].device
            self.cache.drop(torch.cat([self.slot_index(s, device) for s in self.slots]) if self.slots
                            else torch.zeros(0, dtype=torch.long, device=device))


class Planner(FastWAMVideo):
    """AHA-WAM's world planner: Fast-WAM's video DiT with a per-frame causal mask and a rolling memory.

    Args:
        history: history frames kept in the rolling memory (paper: 6); the data window observes
            ``history + 1`` frames (``data.n_obs``).
        frame_stride: environment steps between frames (filled from the data); at inference the
            planner is refreshed every ``frame_stride`` steps.
        video_rope_frame_stride: environment steps per RoPE time unit (the code: 8).
        **kwargs: :class:`~wamzoo_fast_wam.video.FastWAMVideo`'s arguments (paper: Wan2.2-TI2V-5B), but
            ``rope_frame_stride``, which is ``frame_stride / video_rope_frame_stride``.
    """

    #: Its windows hold history frames under a per-frame causal mask, served from the rolling memory.
    provides = caps("video", "rolling-memory")

    def __init__(self, *, history: int = 6, frame_stride: int = 1, video_rope_frame_stride: float = 8.0, **kwargs):
        if history < 0 or frame_stride < 1 or video_rope_frame_stride <= 0:
            raise ValueError(f"need history >= 0, frame_stride >= 1, video_rope_frame_stride > 0; got {history},"
                             f" {frame_stride}, {video_rope_frame_stride}")
        super().__init__(rope_frame_stride=frame_stride / video_rope_frame_stride, **kwargs)
        self.history, self.frame_stride, self.video_rope_frame_stride = history, frame_stride, video_rope_frame_stride
        self.memory: RollingMemory | None = None

    def make_streams(self, latents, n_obs, n_future, batch):
        if n_obs != self.history + 1:
            raise ValueError(f"the planner keeps {self.history} history frames, so it needs history + 1 ="
                             f" {self.history + 1} observed latent frames, one per observed frame; got {n_obs}"
                             " (set data.n_obs, and use a codec without temporal compression)")
        return super().make_streams(latents, n_obs, n_future, batch)

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

    # -- inference: rolling memory -------------------------------------------------------------
    def reset(self) -> None:
        self.memory = None

    @torch.no_grad()
    def refresh(self, frame: Tensor, cond: Conditioning,
                between_layers: Callable[[], None] | None = None) -> PlannerContext:
        """Run the current frame ``[B, 1, V, C, h, w]`` against the memory; remember it; return its context.

        Refreshes are ``frame_stride`` environment steps apart. ``between_layers`` is called before
        every layer (the asynchronous runtime yields to the executor there).
        """
        start = time.perf_counter()
        B = frame.shape[0]
        stream = Stream(x=frame, cond=torch.ones(B, 1, dtype=torch.bool, device=frame.device),
                        t=torch.zeros(B, 1, device=frame.device))
        ts = self.token_set(stream, "video", cond)
        if self.memory is None:
            self.memory = RollingMemory(self.history, ts.num_tokens)
        memory = self.memory
        back = torch.tensor([[-self.rope_frame_stride, 0.0, 0.0]], device=frame.device)
        memory.shift(rope_angles_3d(back, self.dit.head_dim, self.dit.rope_theta))
        slot = memory.next_slot()
        ts.index = memory.slot_index(slot, frame.device)
        n = (memory.size + 1) * memory.tokens
        mask = torch.ones(n, n, dtype=torch.bool, device=frame.device)  # the newest frame sees every kept frame
        record, x = KVCache(), ts.x
        busy = time.perf_counter() - start
        for layer in range(len(self.dit.blocks)):
            if between_layers is not None:
                between_layers()
            start = time.perf_counter()
            x = run_layers([replace(ts, x=x, blocks=ts.blocks[layer: layer + 1], first_layer=layer)], mask, layer + 1,
                           cache=memory.cache, record=record)[0]
            busy += time.perf_counter() - start
        memory.add(record, slot)
        return PlannerContext([record.keys[i] for i in range(len(self.dit.blocks))],
                              [record.values[i] for i in range(len(self.dit.blocks))], busy)
