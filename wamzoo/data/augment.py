"""Random-shift augmentation of training windows (DrQ, Kostrikov et al. 2020, Sec. 3.1; the crop of
Diffusion Policy, Chi et al. 2023, Sec. V): each view is padded by ``shift`` pixels (edge pixels
repeated) and cropped back at a random offset.

One offset per view and window: every frame of the window (history, future, ``step_rgb``) and its
depth move together, so the video objective still predicts the future of what it observed, and the
view's intrinsics move with them (the principal point shifts by the same pixels).
"""

from __future__ import annotations

import numpy as np
import torch


def shift_offsets(num_views: int, shift: int) -> np.ndarray:
    """Per view the crop offset ``(dy, dx)`` in ``[-shift, shift]`` (drawn from torch's seeded generator,
    so each data-loader worker draws its own)."""
    return torch.randint(-shift, shift + 1, (num_views, 2)).numpy()


def shift_views(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Images ``[..., V, C, H, W]`` moved by ``offsets[v] = (dy, dx)`` pixels, edges repeated."""
    H, W = images.shape[-2:]
    out = np.empty_like(images)
    for v, (dy, dx) in enumerate(offsets):
        rows = np.clip(np.arange(H) - dy, 0, H - 1)
        cols = np.clip(np.arange(W) - dx, 0, W - 1)
        out[..., v, :, :, :] = images[..., v, :, :, :].take(rows, axis=-2).take(cols, axis=-1)
    return out


def shift_intrinsics(intrinsics: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Pinhole intrinsics ``[V, 3, 3]`` of the shifted views: the principal point moves with the image."""
    out = intrinsics.copy()
    out[:, 0, 2] += offsets[:, 1]
    out[:, 1, 2] += offsets[:, 0]
    return out
