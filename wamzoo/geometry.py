"""Pinhole geometry: metric depth to world points with the batch's intrinsics and extrinsics.

Conventions (as in :mod:`wamzoo.batch`): OpenCV camera axes (x right, y down, z forward), pixel
``(u, v)`` = (column, row) with pixel centres at integer coordinates, depth in metres along the
optical axis, ``extrinsics`` camera-to-world.

>>> pts = lift(batch.depth, batch.intrinsics[:, None], batch.extrinsics[:, None])   # [B,T,V,H,W,3]
>>> xyz, rgb = point_cloud(depth[0], intrinsics, extrinsics, rgb=frames[0], max_depth=3.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def intrinsics_from_fovy(fovy: float, height: int, width: int) -> Tensor:
    """``[3, 3]`` intrinsics of a camera with vertical field of view ``fovy`` (degrees), square pixels."""
    f = height / (2 * math.tan(math.radians(fovy) / 2))
    return torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def lift(depth: Tensor, intrinsics: Tensor, extrinsics: Tensor) -> Tensor:
    """World points ``[..., H, W, 3]`` of depth ``[..., 1, H, W]`` (or ``[..., H, W]``).

    ``intrinsics [..., 3, 3]`` and ``extrinsics [..., 4, 4]`` broadcast against the leading dims.
    """
    if depth.ndim >= 3 and depth.shape[-3] == 1:
        depth = depth.squeeze(-3)
    H, W = depth.shape[-2:]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    K, E, d = intrinsics.double(), extrinsics.double(), depth.double()
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    cam = torch.stack([(u - cx) / fx * d, (v - cy) / fy * d, d], dim=-1)
    R, t = E[..., None, None, :3, :3], E[..., None, None, :3, 3]
    return ((R @ cam[..., None]).squeeze(-1) + t).to(torch.float64 if depth.dtype == torch.float64 else torch.float32)


def point_cloud(depth: Tensor, intrinsics: Tensor, extrinsics: Tensor, rgb: Tensor | None = None,
                max_depth: float | None = None) -> tuple[Tensor, Tensor | None]:
    """Points ``[N, 3]`` fused over views from depth ``[V, 1, H, W]``, and their colours ``[N, 3]``.

    Pixels deeper than ``max_depth`` (e.g. the far plane where no geometry is seen) are dropped.
    """
    pts = lift(depth, intrinsics, extrinsics).reshape(-1, 3)
    d = depth.reshape(-1)
    keep = torch.isfinite(d) & (d > 0)
    if max_depth is not None:
        keep &= d <= max_depth
    colors = None if rgb is None else rgb.movedim(-3, -1).reshape(-1, rgb.shape[-3])[keep]
    return pts[keep], colors


def project(points: Tensor, intrinsics: Tensor, extrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinates ``[..., 2]`` (u, v) and depth ``[...]`` of world points ``[..., 3]`` in one camera."""
    E = extrinsics.double()
    cam = ((points.double() - E[:3, 3]) @ E[:3, :3])
    z = cam[..., 2]
    K = intrinsics.double()
    uv = torch.stack([K[0, 0] * cam[..., 0] / z + K[0, 2], K[1, 1] * cam[..., 1] / z + K[1, 2]], dim=-1)
    return uv, z
