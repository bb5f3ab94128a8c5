"""Horizon-adaptive offset training (AHA-WAM; release: ``RobotVideoDataset._sample_action_offset``,
``AHAWAM._slice_offset_sequence`` and ``_extract_offset_chunk_start_proprio``, task config
``robotwin_ahawam_offset.yaml``).

At run time the executor starts its chunks at any phase after the planner's frame, because the
planner's context is refreshed asynchronously. Training therefore shifts the executor's window by
an offset ``o`` drawn uniformly from ``0..max_offset`` per sample (paper: 15, one less than the
16-step chunk): the planner still sees the window's current frame, while the executor's actions are
``o, ..., o + H - 1`` steps after it and chunk ``c`` observes the frame and proprioception at step
``o + c * chunk``. The data window must hold ``H + max_offset`` actions (``data.horizon``; the
release: ``action_horizon + max_action_offset <= num_frames - 1``).

>>> o = sample_offsets(4, 15, torch.Generator().manual_seed(0))
>>> window = gather_steps(actions, o[:, None] + torch.arange(64))        # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_offsets(batch_size: int, max_offset: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Tensor:
    """Offsets ``[B]`` (long), uniform over ``0..max_offset`` (all zero when ``max_offset == 0``)."""
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}")
    o = torch.randint(max_offset + 1, (batch_size,), generator=generator,
                      device="cpu" if generator is not None else device)
    return o.to(device) if device is not None else o


def gather_steps(x: Tensor, positions: Tensor) -> Tensor:
    """``x[b, positions[b, j]]``: ``x`` ``[B, K, ...]``, ``positions`` ``[B, L]`` -> ``[B, L, ...]``."""
    if int(positions.max()) >= x.shape[1]:
        raise ValueError(f"step {int(positions.max())} is past the {x.shape[1]} steps of the data window")
    index = positions.to(x.device).reshape(*positions.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, index)


def window_steps(offsets: Tensor, length: int) -> Tensor:
    """Steps ``[B, length]`` of the shifted window: ``o + 0, ..., o + length - 1``."""
    return offsets[:, None] + torch.arange(length, device=offsets.device)


def chunk_start_steps(offsets: Tensor, num_chunks: int, chunk: int) -> Tensor:
    """Steps ``[B, num_chunks]`` at which each chunk of the shifted window starts (its observation)."""
    return offsets[:, None] + chunk * torch.arange(num_chunks, device=offsets.device)


def check_window(data_horizon: int, window: int, max_offset: int) -> None:
    """The data must provide ``window + max_offset`` actions per sample."""
    if data_horizon < window + max_offset:
        raise ValueError(f"the data window has {data_horizon} actions but the executor needs window {window} +"
                         f" max_offset {max_offset} = {window + max_offset}; set data.horizon to at least that")
