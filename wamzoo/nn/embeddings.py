"""Timestep and context embeddings with the parameter names of diffusers' Wan modules.

``TimeTextEmbedding`` mirrors ``WanTimeTextImageEmbedding`` (``time_embedder.linear_1/2``,
``time_proj``, ``text_embedder.linear_1/2``) so Wan2.2 weights load by name, without importing
diffusers (which costs seconds per process).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn


@functools.lru_cache(maxsize=64)
def _frequencies(half: int, max_period: float, device: torch.device) -> Tensor:
    with torch.inference_mode(False):  # usable in training as well as inside inference mode
        return (-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=device) / half).exp()


def sinusoidal(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``[..., dim]`` embedding of timesteps ``t`` (cos first, like ``Timesteps(flip_sin_to_cos=True)``)."""
    args = t.float()[..., None] * _frequencies(dim // 2, max_period, t.device)
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return nn.functional.pad(emb, (0, 1)) if dim % 2 else emb


class MLPEmbedding(nn.Module):
    """``linear_1 -> act -> linear_2`` (diffusers ``TimestepEmbedding`` / ``PixArtAlphaTextProjection``)."""

    def __init__(self, in_dim: int, dim: int, act: str = "silu"):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.act = nn.SiLU() if act == "silu" else nn.GELU(approximate="tanh")
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class TimeTextEmbedding(nn.Module):
    """Per-token timestep embedding (``temb`` and the 6-way AdaLN projection) and text projection.

    Timesteps are flow-matching times in [0, 1]; like Wan they are embedded at ``1000 * t``.
    """

    def __init__(self, dim: int, freq_dim: int = 256, text_dim: int | None = None):
        super().__init__()
        self.freq_dim = freq_dim
        self.time_embedder = MLPEmbedding(freq_dim, dim, act="silu")
        self.act_fn = nn.SiLU()
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.text_embedder = MLPEmbedding(text_dim, dim, act="gelu_tanh") if text_dim else None

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``t`` ``[B, N]`` -> ``temb`` ``[B, N, D]`` and modulation ``[B, N, 6, D]``."""
        temb = self.time_embedder(sinusoidal(t * 1000.0, self.freq_dim).to(self.time_proj.weight.dtype))
        return temb, self.time_proj(self.act_fn(temb)).unflatten(-1, (6, -1))

    def text(self, context: Tensor) -> Tensor:
        if self.text_embedder is None:
            raise ValueError("this embedding was built with text_dim=None; it cannot embed a context")
        return self.text_embedder(context)
