"""Depth -> fused point clouds (X-WAM's 4D output), in the batch contract's pinhole convention.

OpenCV camera axes (x right, y down, z forward), pixel ``(u, v)`` = (column, row) with centres at
integer coordinates, metric depth along the optical axis, ``extrinsics`` camera-to-world. The
benchmark's :mod:`wamzoo.geometry` is used when it is installed; otherwise the same lifting is
done here (it is one formula: ``X = E @ [d (u - cx) / fx, d (v - cy) / fy, d, 1]``).
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # the Meta-World benchmark's geometry (same conventions)
    from wamzoo.geometry import lift as _core_lift
except ImportError:  # pragma: no cover - depends on the installed core
    _core_lift = None


def lift(depth: Tensor, intrinsics: Tensor, extrinsics: Tensor) -> Tensor:
    """World points ``[..., H, W, 3]`` of depth ``[..., 1, H, W]``; camera matrices broadcast over ``...``."""
    if _core_lift is not None:
        return _core_lift(depth, intrinsics, extrinsics)
    d = depth.squeeze(-3).double()
    H, W = d.shape[-2:]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    K, E = intrinsics.double(), extrinsics.double()
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    cam = torch.stack([(u - cx) / fx * d, (v - cy) / fy * d, d], -1)
    world = (E[..., None, None, :3, :3] @ cam[..., None]).squeeze(-1) + E[..., None, None, :3, 3]
    return world.float()


def fused_points(depth: Tensor, intrinsics: Tensor, extrinsics: Tensor, max_depth: float | None = None,
                 rgb: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """One frame's points ``[N, 3]`` fused over views from depth ``[V, 1, H, W]`` (and colours ``[N, 3]``).

    Pixels without geometry (non-finite, non-positive or beyond ``max_depth``, e.g. the far plane)
    are dropped.
    """
    pts = lift(depth, intrinsics, extrinsics).reshape(-1, 3)
    d = depth.reshape(-1)
    keep = torch.isfinite(d) & (d > 0)
    if max_depth is not None:
        keep &= d <= max_depth
    colors = None if rgb is None else rgb.movedim(-3, -1).reshape(-1, rgb.shape[-3])[keep]
    return pts[keep], colors
