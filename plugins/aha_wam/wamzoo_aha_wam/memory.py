"""AHA-WAM's rolling memory: the world model run at low frequency, one frame per refresh, against
the keys/values of the last ``history`` frames (release: ``AHAWAM.prefill_video`` with
``num_history_frames`` and ``per_frame_causal`` attention).

At inference only the current frame is run, against a :class:`RollingMemory` holding the per-layer
keys/values of the last ``history`` refresh frames; its own keys/values then join the memory and
the oldest frame is dropped. Refreshes are ``frame_stride`` steps apart, so before each one the
remembered keys are rotated one frame back in time (the world model's ``rope_frame_stride``):
memory frames sit exactly where training's history frames sit, and the current frame at time 0.
The current frame's per-layer keys/values are the reusable layerwise context
(:class:`PlannerContext`) the executor reads until the next refresh.

The memory belongs to the coupling (it is per-episode inference state), so any video world model
that joins a shared attention can plan: AHA-WAM's planner (windows of ``history + 1`` frames) or
Fast-WAM's video expert (no history: the memory stays empty and a refresh is its current frame).

>>> memory = RollingMemory(size=4, tokens_per_frame=32)                   # doctest: +SKIP
>>> context = refresh(world_model, memory, frame, cond)                   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

from wamzoo.interfaces import Conditioning, Stream, WorldModel
from wamzoo.nn.attention import KVCache
from wamzoo.nn.mot import run_layers
from wamzoo.nn.rope import apply_rope, rope_angles_3d


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

    def __init__(self, size: int, tokens_per_frame: int | None = None):
        self.size, self.tokens = size, tokens_per_frame  # tokens: set by the first frame when None
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


@torch.no_grad()
def refresh(world_model: WorldModel, memory: RollingMemory, frame: Tensor, cond: Conditioning,
            between_layers: Callable[[], None] | None = None) -> PlannerContext:
    """Run the current frame ``[B, 1, V, C, h, w]`` of ``world_model`` against ``memory``, remember it,
    return its context. ``between_layers`` is called before every layer (the asynchronous runtime
    yields to the executor there)."""
    start = time.perf_counter()
    B = frame.shape[0]
    stream = Stream(x=frame, cond=torch.ones(B, 1, dtype=torch.bool, device=frame.device),
                    t=torch.zeros(B, 1, device=frame.device))
    ts = world_model.token_set(stream, "video", cond)
    memory.tokens = memory.tokens or ts.num_tokens
    if ts.num_tokens != memory.tokens:
        raise ValueError(f"a frame has {ts.num_tokens} tokens but the memory holds frames of {memory.tokens}")
    dit = world_model.dit
    back = torch.tensor([[-world_model.rope_frame_stride, 0.0, 0.0]], device=frame.device)
    memory.shift(rope_angles_3d(back, dit.head_dim, dit.rope_theta))
    slot = memory.next_slot()
    ts.index = memory.slot_index(slot, frame.device)
    n = (memory.size + 1) * memory.tokens
    mask = torch.ones(n, n, dtype=torch.bool, device=frame.device)  # the newest frame sees every kept frame
    record, x = KVCache(), ts.x
    busy = time.perf_counter() - start
    layers = len(dit.blocks)
    for layer in range(layers):
        if between_layers is not None:
            between_layers()
        start = time.perf_counter()
        x = run_layers([replace(ts, x=x, blocks=ts.blocks[layer: layer + 1], first_layer=layer)], mask, layer + 1,
                       cache=memory.cache, record=record)[0]
        busy += time.perf_counter() - start
    memory.add(record, slot)
    return PlannerContext([record.keys[i] for i in range(layers)], [record.values[i] for i in range(layers)], busy)
