"""Rotary position embeddings (RoPE) as used by Wan: 1-D, and 3-D over (frame, height, width).

Positions are floats, so tokens can sit at fractional frames (X-WAM places 4 actions per video
frame, §3.2). Angles are returned as ``[N, head_dim // 2]`` and applied to interleaved channel
pairs ``(0, 1), (2, 3), ...`` exactly like diffusers' ``WanRotaryPosEmbed`` / Wan's ``rope_apply``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Wan's split of ``head_dim`` into (frame, height, width) channels."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    h = w = 2 * (head_dim // 6)
    return head_dim - h - w, h, w


def rope_angles_1d(positions: Tensor, dim: int, theta: float = 10000.0) -> Tensor:
    """Angles ``[N, dim // 2]`` for scalar ``positions`` ``[N]``."""
    freqs = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device)[: dim // 2] / dim)
    return (positions.double()[:, None] * freqs[None]).float()


def rope_angles_3d(positions: Tensor, head_dim: int, theta: float = 10000.0) -> Tensor:
    """Angles ``[N, head_dim // 2]`` for (frame, height, width) ``positions`` ``[N, 3]``."""
    dims = rope_split(head_dim)
    return torch.cat([rope_angles_1d(positions[:, i], d, theta) for i, d in enumerate(dims)], dim=-1)


def grid_positions(frames: int, height: int, width: int, frame_offset: float = 0.0, frame_stride: float = 1.0,
                   device: torch.device | str | None = None) -> Tensor:
    """(f, h, w) positions ``[frames * height * width, 3]`` in row-major (frame, row, col) order."""
    f = torch.arange(frames, dtype=torch.float32, device=device) * frame_stride + frame_offset
    h = torch.arange(height, dtype=torch.float32, device=device)
    w = torch.arange(width, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(f, h, w, indexing="ij"), dim=-1)
    return grid.reshape(-1, 3)


def rope_rotation(angles: Tensor) -> Tensor:
    """Unit complex rotations ``[B or 1, N, 1, D/2]`` of ``angles`` ``[N, D/2]`` or ``[B, N, D/2]``.

    Compute them once per token set and pass them to :func:`apply_rope` in every layer.
    """
    if angles.ndim == 2:
        angles = angles[None]
    return torch.polar(torch.ones_like(angles, dtype=torch.float32), angles.float())[:, :, None, :]


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate ``x`` ``[B, N, H, D]`` by ``angles`` ``[N, D/2]`` (or ``[B, N, D/2]``) on interleaved pairs.

    ``angles`` may also be precomputed :func:`rope_rotation` (complex), which saves the trigonometry.
    """
    rot = angles if angles.is_complex() else rope_rotation(angles)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * rot).flatten(-2).type_as(x)
