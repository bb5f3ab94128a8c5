"""Frames resized as LeRobot's Meta-World pipeline sees them (plain torch, no model code)."""

from __future__ import annotations

import numpy as np


def resize_frames(frames, size: int):
    """``[N, 3, H, W]`` uint8 frames (numpy or torch) -> ``[N, 3, size, size]`` uint8 torch: bilinear with
    antialiasing, rounded; what ``--lerobot-env`` datasets hold and the LeRobot plugin feeds its policies."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if tuple(x.shape[-2:]) == (size, size):
        return x.to(torch.uint8)
    x = x.float() if x.dtype == torch.uint8 else x.float() * 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
