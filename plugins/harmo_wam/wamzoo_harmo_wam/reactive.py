"""HarmoWAM's reactive expert: inverse dynamics from the predicted frames, one forward pass.

HarmoWAM (reactive expert): a vision backbone encodes the predicted frame, its features and the
pooled world-model latent go through a light decoder that regresses the action chunk; trained
with Smooth-L1 (``beta = 0.1``). Inverse dynamics needs where the robot is and where it is
predicted to be, so the backbone encodes the current frame and the last ``future_frames`` predicted
frames (every view) with shared weights; their features, concatenated with the pooled latent,
go through a two-layer MLP to the ``[K, A]`` chunk (normalised units).

The backbone is any timm model, built from its config with ``pretrained=False`` (no download):
e.g. ``resnet10t``, ``resnet18``, ``convnext_atto``, ``vit_tiny_patch16_224`` (with
``backbone_kwargs={"img_size": 64}``), or timm's ``test_*`` models for tests. Pixels are
normalised with the model's ``pretrained_cfg`` mean and std.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ReactiveExpert(nn.Module):
    """Inverse dynamics: frames (current + predicted) and the pooled latent -> an action chunk.

    Args:
        action_dim, horizon: chunk shape.
        latent_dim: width of the world model's latent.
        num_views: camera views per frame.
        backbone: timm model name (built with ``pretrained=False, num_classes=0``).
        backbone_kwargs: extra ``timm.create_model`` arguments (e.g. ``img_size`` for a ViT).
        future_frames: predicted frames read (the last ones of the predicted clip).
        hidden: width of the decoder MLP.
        beta: Smooth-L1 transition point (paper: 0.1).
    """

    def __init__(self, action_dim: int, horizon: int, latent_dim: int, num_views: int = 1,
                 backbone: str = "resnet10t", backbone_kwargs: dict[str, Any] | None = None,
                 future_frames: int = 1, hidden: int = 256, beta: float = 0.1):
        super().__init__()
        import timm

        if future_frames < 1:
            raise ValueError(f"future_frames must be >= 1, got {future_frames}")
        self.action_dim, self.horizon, self.num_views = action_dim, horizon, num_views
        self.future_frames, self.beta = future_frames, float(beta)
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0, **dict(backbone_kwargs or {}))
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        self.register_buffer("pixel_mean", torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1),
                             persistent=False)
        features = (1 + future_frames) * num_views * self.backbone.num_features
        self.decoder = nn.Sequential(nn.Linear(features + latent_dim, hidden), nn.GELU(),
                                     nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, horizon * action_dim))

    def forward(self, current: Tensor, future: Tensor, pooled_latent: Tensor) -> Tensor:
        """``current`` ``[B, V, 3, H, W]``, ``future`` ``[B, f, V, 3, H, W]`` in [0, 1] -> ``[B, K, A]``."""
        if future.shape[1] != self.future_frames or future.shape[2] != self.num_views:
            raise ValueError(f"the reactive expert reads {self.future_frames} predicted frame(s) of {self.num_views}"
                             f" view(s); got {tuple(future.shape[1:3])}")
        frames = torch.cat([current[:, None], future], 1)
        B = frames.shape[0]
        images = (frames.flatten(0, 2).float() - self.pixel_mean) / self.pixel_std
        feats = self.backbone(images).reshape(B, -1)
        out = self.decoder(torch.cat([feats, pooled_latent.float()], -1))
        return out.view(B, self.horizon, self.action_dim)

    def loss(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """Smooth-L1 (``beta``) averaged over each sample's valid steps, then over the batch."""
        per_step = F.smooth_l1_loss(pred.float(), target.float(), reduction="none", beta=self.beta).mean(-1)
        m = torch.ones_like(per_step) if valid is None else valid.float()
        return ((per_step * m).sum(1) / m.sum(1).clamp(min=1.0)).mean()
