"""ActionDiT backbone (Fast-WAM §3.1): a narrow DiT over action tokens with the video expert's
heads x head_dim, so both experts' Q/K/V concatenate in one attention.

``action_encoder`` (linear in), ``condition_embedder`` (time + text), ``blocks``, ``head`` (linear
out); 1-D RoPE over the full head dimension at (possibly fractional) action positions.
"""

from __future__ import annotations

from torch import Tensor, nn

from wamzoo.nn.dit import DiTBlock
from wamzoo.nn.embeddings import TimeTextEmbedding
from wamzoo.nn.rope import rope_angles_1d


class ActionDiT(nn.Module):
    def __init__(self, action_dim: int, dim: int, ffn_dim: int, num_layers: int, num_heads: int,
                 head_dim: int | None = None, context_dim: int | None = None, freq_dim: int = 256,
                 cross_attn_norm: bool = True, eps: float = 1e-6, rope_theta: float = 10000.0):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = head_dim or dim // num_heads
        self.action_dim, self.rope_theta = action_dim, rope_theta
        self.action_encoder = nn.Linear(action_dim, dim)
        self.condition_embedder = TimeTextEmbedding(dim, freq_dim, context_dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, ffn_dim, num_heads, self.head_dim, context_dim is not None,
                                              cross_attn_norm, eps) for _ in range(num_layers)])
        self.head = nn.Linear(dim, action_dim)

    def rope(self, positions: Tensor) -> Tensor:
        return rope_angles_1d(positions.float(), self.head_dim, self.rope_theta)

    def tokens(self, actions: Tensor) -> Tensor:
        return self.action_encoder(actions.to(self.action_encoder.weight.dtype))
