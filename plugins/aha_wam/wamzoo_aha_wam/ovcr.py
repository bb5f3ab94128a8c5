"""OVCR: the executor's observation-conditioned edit of the planner's cached context (AHA-WAM; release:
``MultiQueryChunkObsEncoder`` and ``action_obs_visual_proj`` in ``ahawam_chunk_base.py``,
``LayerwiseChunkKVCacheEditor`` in ``mot.py``).

The planner's per-layer keys/values of its current frame, ``K0``/``V0``, are reused for several
chunks while the robot moves on. OVCR refreshes them for each chunk from what the robot sees at the
chunk's start:

1. the chunk-start observation's latent is projected per spatial position to context-width tokens
   (``visual``: LayerNorm, Linear, GELU, Linear);
2. ``num_queries`` learned queries (paper: 32) cross-attend to those tokens (single head; keys
   LayerNorm + Linear, values and query output LayerNorm, Linear, GELU, Linear);
3. at every layer ``l`` the queries are projected to the shared attention width and *route* over
   ``K0``/``V0`` per head (softmax over the frame tokens); every frame token then reads the routed
   queries back (softmax over the queries) and an MLP whose last layer starts at zero yields
   ``dK``, ``dV``;
4. ``K' = K0 + sigmoid(g_l) dK``, ``V' = V0 + sigmoid(g_l) dV`` with the gate ``g_l`` initialised to
   ``-4``. At initialisation ``dK = dV = 0`` exactly, so OVCR starts as an exact no-op.

The chunk-start proprioception is the other half of the observation context: in the code it is
routed to the executor's cross-attention (one token, current chunk only; see
:mod:`wamzoo_aha_wam.executor`), and the queries read the visual tokens only. ``query_proprio=True``
also lets the queries read the proprio token (the paper's wording: "the current observation context
and the chunk-start proprio").

>>> ovcr = OVCR(latent_channels=48, context_dim=64, num_layers=2, num_heads=2, head_dim=16)
>>> q = ovcr.queries(ovcr.visual_tokens(latents), proprio_tokens)       # doctest: +SKIP
>>> k1, v1 = ovcr.edit(0, q, k0, v0)                                     # doctest: +SKIP
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _mlp(dim: int, out: int | None = None) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out or dim))


class OVCR(nn.Module):
    """Observation-conditioned, gated edit of the planner's per-layer K/V (see module doc).

    Args:
        latent_channels: channels of the codec latents of the chunk-start observation.
        context_dim: width of the queries (the context width; the code: the T5 width 4096).
        num_layers, num_heads, head_dim: the shared attention the edited K/V enter.
        num_queries: learned queries (paper: 32).
        gate_init: initial value of each layer's gate logit ``g_l`` (paper: -4).
        obs_pool: average-pool the observation latent by this factor first (the code's
            ``action_obs_downsample_factor``; 1 in the released offset model).
        query_proprio: the queries also read the proprio token (the code: visual tokens only).
    """

    def __init__(self, latent_channels: int, context_dim: int, num_layers: int, num_heads: int, head_dim: int,
                 num_queries: int = 32, gate_init: float = -4.0, obs_pool: int = 1, query_proprio: bool = False):
        super().__init__()
        if num_queries < 1 or obs_pool < 1:
            raise ValueError(f"need num_queries >= 1 and obs_pool >= 1, got {num_queries}, {obs_pool}")
        d, inner = context_dim, num_heads * head_dim
        self.num_heads, self.head_dim, self.obs_pool, self.query_proprio = num_heads, head_dim, obs_pool, query_proprio
        self.visual = nn.Sequential(nn.LayerNorm(latent_channels), nn.Linear(latent_channels, d), nn.GELU(),
                                    nn.Linear(d, d))
        self.base_queries = nn.Parameter(torch.randn(num_queries, d) / math.sqrt(d))
        self.key_proj = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d))
        self.value_proj = _mlp(d)
        self.query_proj = _mlp(d)
        self.route = nn.ModuleList([nn.Sequential(nn.LayerNorm(d), nn.Linear(d, inner)) for _ in range(num_layers)])
        self.delta = nn.ModuleList([_mlp(inner, 2 * inner) for _ in range(num_layers)])
        for mlp in self.delta:
            nn.init.zeros_(mlp[-1].weight)
            nn.init.zeros_(mlp[-1].bias)
        self.gate = nn.Parameter(torch.full((num_layers,), float(gate_init)))

    def visual_tokens(self, latents: Tensor) -> Tensor:
        """Observation latents ``[B, N, V, C, h, w]`` (one frame per chunk) -> tokens ``[B, N, V*h*w, D]``."""
        B, N, V, C, h, w = latents.shape
        x = latents.reshape(B * N * V, C, h, w).float()
        if self.obs_pool > 1:
            x = F.avg_pool2d(x, self.obs_pool, self.obs_pool)
        x = x.flatten(2).transpose(1, 2).reshape(B, N, -1, C)
        return self.visual(x.to(self.visual[1].weight.dtype))

    def queries(self, visual: Tensor, proprio: Tensor | None = None) -> Tensor:
        """Per-chunk queries ``[B, N, Q, D]`` from visual tokens ``[B, N, T, D]`` (and proprio ``[B, N, D]``)."""
        obs = visual if proprio is None or not self.query_proprio else torch.cat([visual, proprio[:, :, None]], 2)
        q = self.base_queries.expand(*obs.shape[:2], -1, -1)
        scores = q @ self.key_proj(obs).transpose(-1, -2) / math.sqrt(obs.shape[-1])
        return self.query_proj(scores.softmax(-1) @ self.value_proj(obs))

    def edit(self, layer: int, queries: Tensor, k0: Tensor, v0: Tensor) -> tuple[Tensor, Tensor]:
        """``K'``, ``V'`` ``[B, N, F, H, Dh]`` for each of the ``N`` chunks from ``K0``, ``V0`` ``[B, F, H, Dh]``."""
        B, N, Q, _ = queries.shape
        scale = 1.0 / math.sqrt(self.head_dim)
        q = self.route[layer](queries).unflatten(-1, (self.num_heads, self.head_dim))        # [B, N, Q, H, Dh]
        routed = torch.einsum("bnqhd,bshd->bnhqs", q, k0.to(q)).mul(scale).softmax(-1)
        routed = torch.einsum("bnhqs,bshd->bnqhd", routed, v0.to(q))                        # [B, N, Q, H, Dh]
        back = torch.einsum("bshd,bnqhd->bnhsq", k0.to(q), routed).mul(scale).softmax(-1)
        decoded = torch.einsum("bnhsq,bnqhd->bnshd", back, routed).flatten(-2)              # [B, N, F, H*Dh]
        dk, dv = self.delta[layer](decoded).unflatten(-1, (2, self.num_heads, self.head_dim)).unbind(-3)
        g = torch.sigmoid(self.gate[layer])
        return (k0[:, None] + g * dk).to(k0.dtype), (v0[:, None] + g * dv).to(v0.dtype)
