"""Observation codecs: pixels ``[B, T, V, 3, H, W]`` in [0, 1] <-> latents ``[B, T', V, C, h, w]``.

- :class:`PatchCodec`: no weights; pixels scaled to [-1, 1] and folded ``p x p`` into channels.
  The codec of the tiny CPU models (a DiT over raw patches).
- :class:`WanVAECodec`: diffusers' ``AutoencoderKLWan`` (the Wan2.2 VAE: 48 channels, 16x spatial,
  4x causal temporal compression), loaded from a local folder or the Hub, or built from a config
  (tiny configs run on a CPU). Latents are normalised with the VAE's ``latents_mean/std``.
  ``per_frame=True`` encodes every frame as its own 1-frame clip (no temporal compression), as the
  AHA-WAM release does for its planner frames (``_encode_input_image_latents_tensor`` per frame).

A camera ``layout`` (:func:`compose_views`) makes the VAE see all cameras as one canvas, as the
Fast-WAM code does (it concatenates the cameras in pixel space before encoding); its latents then
have one view, the canvas, and the DiT sees the same token grid as the original.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wamzoo import fastpath
from wamzoo.interfaces import Codec

LAYOUTS = ("horizontal", "robotwin")


def compose_views(frames: Tensor, layout: str, canvas: tuple[int, int] | None = None) -> Tensor:
    """Cameras ``[B, T, V, 3, H, W]`` -> one canvas ``[B, T, 1, 3, Hc, Wc]``.

    - ``"horizontal"``: views side by side; with ``canvas`` each view is first resized to
      ``(Hc, Wc / V)`` (Fast-WAM LIBERO: two 224 x 224 cameras -> 224 x 448).
    - ``"robotwin"``: the first view on top at ``(2 Hc / 3, Wc)``, the other two side by side below
      at ``(Hc / 3, Wc / 2)`` each (Fast-WAM RoboTwin: 256 x 320 over 2 x 128 x 160 -> 384 x 320).

    Resizing is bilinear with antialiasing (a no-op for views already at the target size).
    """
    B, T, V, C, H, W = frames.shape
    if layout not in LAYOUTS:
        raise ValueError(f"unknown camera layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    x = frames.reshape(B * T, V, C, H, W)
    if layout == "horizontal":
        if canvas is not None and canvas[1] % V:
            raise ValueError(f"canvas width {canvas[1]} is not divisible by the {V} views")
        size = None if canvas is None else (int(canvas[0]), int(canvas[1]) // V)
        out = torch.cat([_resize(x[:, v], size) for v in range(V)], dim=-1)
    else:
        if V != 3 or canvas is None:
            raise ValueError(f"layout 'robotwin' needs 3 views and a canvas size, got {V} views, canvas={canvas}")
        top_h = 2 * int(canvas[0]) // 3
        bottom = (int(canvas[0]) - top_h, int(canvas[1]) // 2)
        below = torch.cat([_resize(x[:, 1], bottom), _resize(x[:, 2], bottom)], dim=-1)
        out = torch.cat([_resize(x[:, 0], (top_h, int(canvas[1]))), below], dim=-2)
    return out.reshape(B, T, 1, C, *out.shape[-2:])


def _resize(x: Tensor, size: tuple[int, int] | None) -> Tensor:
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True).to(x.dtype)


class PatchCodec(Codec):
    """Space-to-depth patches of pixels in [-1, 1] (``C = 3 p^2``, ``h = H / p``).

    Args:
        patch: patch size ``p``; frame height and width must be multiples of it.
    """

    def __init__(self, patch: int = 4, channels: int = 3):
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.patch, self.channels = patch, channels
        self.latent_channels = channels * patch * patch
        self.spatial_factor = patch

    def encode(self, frames: Tensor) -> Tensor:
        B, T, V, C, H, W = frames.shape
        if H % self.patch or W % self.patch:
            raise ValueError(f"frames of {H}x{W} are not divisible by the codec patch {self.patch};"
                             " change the camera resolution or codec.patch")
        x = F.pixel_unshuffle(frames.reshape(B * T * V, C, H, W) * 2 - 1, self.patch)
        return x.reshape(B, T, V, *x.shape[1:])

    def decode(self, latents: Tensor) -> Tensor:
        B, T, V = latents.shape[:3]
        x = F.pixel_shuffle(latents.reshape(B * T * V, *latents.shape[3:]), self.patch)
        return ((x + 1) / 2).clamp(0, 1).reshape(B, T, V, *x.shape[1:])


@functools.cache
def _one_frame_conv() -> type:
    """diffusers' ``WanCausalConv3d`` with a fast path for one frame (:mod:`wamzoo.fastpath`).

    A causal convolution pads ``kernel_t - 1`` zero frames before its input when it has no cache
    (a clip's first frame, and every frame of a one-frame clip): over a single frame only the
    kernel's last time slice meets data, so the output is that slice's 2-D convolution."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    class OneFrameCausalConv3d(WanCausalConv3d):
        def forward(self, x: Tensor, cache_x: Tensor | None = None) -> Tensor:
            if (cache_x is None and x.shape[2] == 1 and self._padding[4] == self.kernel_size[0] - 1
                    and self.stride[0] == 1 and fastpath.enabled()):
                y = F.conv2d(x[:, :, 0], self.weight[:, :, -1], self.bias, self.stride[1:],
                             (self._padding[2], self._padding[0]), self.dilation[1:])
                return y.unsqueeze(2)
            return super().forward(x, cache_x)

    return OneFrameCausalConv3d


class WanVAECodec(Codec):
    """The Wan VAE from diffusers (``AutoencoderKLWan``), frozen.

    Args:
        pretrained: a Hub repo id or local folder of a diffusers VAE (e.g.
            ``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` with ``subfolder="vae"``). Goes through the
            Hugging Face cache, so ``HF_HUB_OFFLINE=1`` works once it is cached.
        subfolder: folder of the VAE inside ``pretrained``.
        config: constructor arguments of ``AutoencoderKLWan`` to build it instead (random
            weights; tiny configs are used by tests).
        revision: revision pin for ``pretrained``.
        layout: encode all cameras as one canvas (:func:`compose_views`); latents then have one view.
        canvas: ``(height, width)`` of that canvas; each camera is resized into it, so frames of any size
            are accepted (:attr:`resizes`).
        per_frame: encode and decode each frame as its own 1-frame clip: one latent per frame,
            ``temporal_factor`` 1.
    """

    def __init__(self, pretrained: str | None = None, subfolder: str | None = "vae",
                 config: dict[str, Any] | None = None, revision: str | None = None, layout: str | None = None,
                 canvas: tuple[int, int] | None = None, per_frame: bool = False):
        super().__init__()
        self.per_frame = bool(per_frame)
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"unknown camera layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.layout, self.canvas = layout, None if canvas is None else tuple(int(c) for c in canvas)
        self.resizes = layout is not None and canvas is not None
        from diffusers import AutoencoderKLWan

        if (pretrained is None) == (config is None):
            raise ValueError("give exactly one of `pretrained` (a Hub id or folder) or `config`")
        if pretrained is not None:
            self.vae = AutoencoderKLWan.from_pretrained(pretrained, subfolder=subfolder, revision=revision)
        else:
            self.vae = AutoencoderKLWan(**dict(config))
        self.vae.requires_grad_(False).eval()
        one_frame = _one_frame_conv()
        for m in self.vae.modules():  # same parameters and state dict; see _one_frame_conv
            if type(m) is one_frame.__base__:
                m.__class__ = one_frame
        cfg = self.vae.config
        self.latent_channels = int(cfg.z_dim)
        self.spatial_factor = 2 ** (len(cfg.dim_mult) - 1) * int(cfg.patch_size or 1)
        self.temporal_factor = 1 if self.per_frame else 2 ** sum(bool(x) for x in cfg.temperal_downsample)
        self.register_buffer("mean", torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1),
                             persistent=False)

    def train(self, mode: bool = True) -> "WanVAECodec":
        super().train(mode)
        self.vae.eval()  # frozen
        return self

    def _dtype(self) -> torch.dtype:
        """The VAE's precision (its first weight's; diffusers' ``vae.dtype`` walks every module)."""
        return next(self.vae.parameters()).dtype

    def _clips(self, x: Tensor) -> tuple[Tensor, int]:
        """``[B, T, V, C, H, W]`` -> VAE clips ``[N, C, T', H, W]`` (one per view, or per frame and view)."""
        B, T, V = x.shape[:3]
        if self.per_frame:
            return x.reshape(B * T * V, *x.shape[3:]).unsqueeze(2), B
        return x.permute(0, 2, 3, 1, 4, 5).reshape(B * V, x.shape[3], T, *x.shape[4:]), B

    def _unclips(self, y: Tensor, B: int, V: int) -> Tensor:
        """Inverse of :meth:`_clips`: ``[N, C, T', H, W]`` -> ``[B, T', V, C, H, W]``."""
        if self.per_frame:
            y = y[:, :, 0]
            return y.reshape(B, -1, V, *y.shape[1:])
        return y.reshape(B, V, *y.shape[1:]).permute(0, 3, 1, 2, 4, 5)

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        if self.layout is not None:
            frames = compose_views(frames, self.layout, self.canvas)
        x, B = self._clips(frames * 2 - 1)
        z = (self._encode(x.to(self._dtype())).float() - self.mean) / self.std
        return self._unclips(z, B, frames.shape[2])

    def _encode(self, x: Tensor) -> Tensor:
        """The posterior's mode of clips ``x``. One frame on the fast path (:mod:`wamzoo.fastpath`): the encoder
        alone, without the per-convolution cache of the frames that come next (there are none)."""
        vae = self.vae
        if x.shape[2] == 1 and fastpath.enabled() and not vae.use_tiling:
            from diffusers.models.autoencoders.autoencoder_kl_wan import patchify

            x = x if vae.config.patch_size is None else patchify(x, vae.config.patch_size)
            return vae.quant_conv(vae.encoder(x))[:, : vae.config.z_dim]
        return vae.encode(x).latent_dist.mode()

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        z, B = self._clips(latents)
        x = self.vae.decode((z * self.std + self.mean).to(self._dtype())).sample.float()
        return self._unclips(((x + 1) / 2).clamp(0, 1), B, latents.shape[2])
