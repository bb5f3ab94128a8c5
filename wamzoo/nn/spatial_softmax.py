"""Spatial-softmax keypoints: a small convolutional encoder whose output is where things are, not what.

Deep spatial autoencoders (Finn et al., 2016, §4) end a convolutional net with a softmax over each feature
map's pixels and keep the expected image coordinates — one 2-D point per channel. robomimic's visual core and
Diffusion Policy (Chi et al., 2023, §3.2, "spatial softmax pooling") read images this way: a policy that
must put the hand on a goal seen in the image is handed that goal's coordinates rather than having to
regress them out of patch embeddings. Here the points become context tokens (:mod:`wamzoo.conditioning`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def spatial_softmax(features: Tensor, temperature: Tensor | float = 1.0) -> Tensor:
    """``[N, K, H, W]`` feature maps -> ``[N, K, 2]`` expected ``(x, y)`` in [-1, 1] under each map's softmax
    over pixels (pixel centres; ``x`` along the width)."""
    N, K, H, W = features.shape
    attn = torch.softmax(features.flatten(2) / temperature, dim=-1).view(N, K, H, W)
    ys = torch.linspace(-1.0, 1.0, H, device=features.device, dtype=attn.dtype)
    xs = torch.linspace(-1.0, 1.0, W, device=features.device, dtype=attn.dtype)
    return torch.stack([(attn.sum(2) * xs).sum(-1), (attn.sum(3) * ys).sum(-1)], dim=-1)


class KeypointEncoder(nn.Module):
    """Frames ``[B, V, 3, H, W]`` in [0, 1] -> ``[B, V * K, dim]`` tokens, one per keypoint of each view.

    Three 3x3 convolutions (strides 2, 2, 1: a quarter of the resolution), a 1x1 convolution to ``K`` maps
    and :func:`spatial_softmax` with a learned temperature; each point's ``(x, y)`` goes through its own
    linear map to ``dim`` (a keypoint's meaning is its channel, so the weights are per view and keypoint).

    Args:
        num_views: cameras per frame (their keypoint maps share the convolutions).
        keypoints: ``K``, points per view.
        dim: token width (the context's).
        width: channels of the convolutions.
    """

    def __init__(self, num_views: int, keypoints: int, dim: int, width: int = 32):
        super().__init__()
        self.num_views, self.keypoints = num_views, keypoints
        self.convs = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * width, keypoints, 1))
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.weight = nn.Parameter(torch.randn(num_views * keypoints, 2, dim) / 2 ** 0.5)
        self.bias = nn.Parameter(torch.zeros(num_views * keypoints, dim))

    def points(self, frames: Tensor) -> Tensor:
        """``[B, V, 3, H, W]`` -> ``[B, V * K, 2]`` keypoint coordinates."""
        B, V = frames.shape[:2]
        if V != self.num_views:
            raise ValueError(f"the keypoint encoder was built for {self.num_views} views, the frames have {V}")
        x = frames.flatten(0, 1).to(self.bias.dtype) * 2 - 1
        return spatial_softmax(self.convs(x), self.log_temperature.exp()).reshape(B, V * self.keypoints, 2)

    def forward(self, frames: Tensor) -> Tensor:
        return torch.einsum("bkc,kcd->bkd", self.points(frames), self.weight) + self.bias
