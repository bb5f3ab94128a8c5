"""Wan-style video DiT backbone; parameter names equal diffusers' ``WanTransformer3DModel``.

``patch_embedding`` (Conv3d), ``condition_embedder`` (time + text), ``blocks``, ``norm_out``,
``proj_out``, ``scale_shift_table``: a Wan2.2-TI2V-5B state dict loads by name into
``VideoDiT(48, 3072, 14336, 30, 24, context_dim=4096)``. Views are placed side by side along the
width before patchifying (Fast-WAM's camera layout); timesteps are per token (Wan2.2 TI2V).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from wamzoo.nn.dit import DiTBlock, FP32LayerNorm
from wamzoo.nn.embeddings import TimeTextEmbedding
from wamzoo.nn.rope import grid_positions, rope_angles_3d


class VideoDiT(nn.Module):
    def __init__(self, in_channels: int, dim: int, ffn_dim: int, num_layers: int, num_heads: int,
                 head_dim: int | None = None, patch_size: tuple[int, int, int] = (1, 2, 2),
                 context_dim: int | None = None, out_channels: int | None = None, freq_dim: int = 256,
                 cross_attn_norm: bool = True, eps: float = 1e-6, rope_theta: float = 10000.0):
        super().__init__()
        patch_size = tuple(int(p) for p in patch_size)
        if patch_size[0] != 1:
            raise ValueError(f"temporal patch size must be 1 (per-frame timesteps), got {patch_size}")
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = head_dim or dim // num_heads
        self.patch_size, self.rope_theta = patch_size, rope_theta
        self.in_channels, self.out_channels = in_channels, out_channels or in_channels
        self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.condition_embedder = TimeTextEmbedding(dim, freq_dim, context_dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, ffn_dim, num_heads, self.head_dim, context_dim is not None,
                                              cross_attn_norm, eps) for _ in range(num_layers)])
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, self.out_channels * math.prod(patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def grid(self, latents: Tensor) -> tuple[int, int, int]:
        """Token grid (frames, rows, cols) of latents ``[B, F, V, C, h, w]`` (views side by side)."""
        _, F, V, _, h, w = latents.shape
        ph, pw = self.patch_size[1:]
        if h % ph or (V * w) % pw:
            raise ValueError(f"latent size {h}x{V}x{w} is not divisible by the DiT patch {self.patch_size[1:]}")
        return F, h // ph, V * w // pw

    def tokens(self, latents: Tensor) -> Tensor:
        """Patch-embed ``[B, F, V, C, h, w]`` into ``[B, F * rows * cols, D]``."""
        B, F, V, C, h, w = latents.shape
        x = latents.permute(0, 3, 1, 4, 2, 5).reshape(B, C, F, h, V * w)
        return self.patch_embedding(x.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)

    def rope(self, grid: tuple[int, int, int], frame_offset: float = 0.0, frame_stride: float = 1.0,
             device=None) -> Tensor:
        return rope_angles_3d(grid_positions(*grid, frame_offset, frame_stride, device), self.head_dim,
                              self.rope_theta)

    def unpatchify(self, x: Tensor, temb: Tensor, grid: tuple[int, int, int], views: int) -> Tensor:
        """Final AdaLN + projection, back to ``[B, F, V, C, h, w]``."""
        shift, scale = (self.scale_shift_table[None] + temb[:, :, None].float()).chunk(2, dim=2)
        h = self.norm_out(x.float()) * (1 + scale.squeeze(2)) + shift.squeeze(2)
        out = self.proj_out(h.type_as(x))
        B = x.shape[0]
        F, rows, cols = grid
        _, ph, pw = self.patch_size
        out = out.reshape(B, F, rows, cols, ph, pw, self.out_channels)
        out = out.permute(0, 1, 6, 2, 4, 3, 5).reshape(B, F, self.out_channels, rows * ph, cols * pw)
        w = cols * pw // views
        return out.reshape(B, F, self.out_channels, rows * ph, views, w).permute(0, 1, 4, 2, 3, 5)
