"""HarmoWAM's predictive expert: an action DiT that cross-attends to the world model's latent.

HarmoWAM (predictive expert): actions are generated iteratively by flow matching (chunk ``H =
12`` in the paper) with an action DiT whose cross-attention reads the world model's latent. Here it
is the core's ActionDiT (:mod:`wamzoo.nn.action_dit`: Wan blocks, AdaLN per-token timesteps, 1-D
RoPE) run on its own: self-attention over the action chunk, and in every block a cross-attention
(``attn2``) to ``[context tokens, projected latent tokens]`` (task and proprio tokens from the
policy's context, then every latent token of the current and predicted frames).

>>> expert = PredictiveExpert(action_dim=4, latent_dim=64, context_dim=16)   # doctest: +SKIP
>>> v = expert(x_t, t, latent.tokens, cond.context, cond.context_mask)      # velocity [B, K, A]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wamzoo.nn.action_dit import ActionDiT
from wamzoo.nn.embeddings import MLPEmbedding


class PredictiveExpert(nn.Module):
    """Flow-matching action DiT conditioned by cross-attention on the world model's latent.

    Args:
        action_dim: action width.
        latent_dim: width of the world model's latent tokens (its ``dim``).
        context_dim: width of the policy's context tokens (task, proprio).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size.
    """

    def __init__(self, action_dim: int, latent_dim: int, context_dim: int, dim: int = 64,
                 ffn_dim: int | None = None, num_layers: int = 2, num_heads: int = 4, head_dim: int | None = None):
        super().__init__()
        self.dit = ActionDiT(action_dim, dim, ffn_dim or 4 * dim, num_layers, num_heads, head_dim, context_dim)
        self.latent_embedder = MLPEmbedding(latent_dim, dim, act="gelu_tanh")

    def forward(self, x: Tensor, t: Tensor, latent: Tensor, context: Tensor | None = None,
                context_mask: Tensor | None = None) -> Tensor:
        """Velocity ``[B, K, A]`` of noisy actions ``x`` at per-step times ``t`` ``[B, K]``."""
        B, K = x.shape[:2]
        _, mod = self.dit.condition_embedder(t)
        parts, masks = [self.latent_embedder(latent)], [torch.ones(latent.shape[:2], dtype=torch.bool,
                                                                   device=x.device)]
        if context is not None:
            parts.insert(0, self.dit.condition_embedder.text(context))
            masks.insert(0, context_mask if context_mask is not None
                         else torch.ones(context.shape[:2], dtype=torch.bool, device=x.device))
        ctx, ctx_mask = torch.cat(parts, 1), torch.cat(masks, 1)
        h = self.dit.tokens(x)
        rope = self.dit.rope(torch.arange(K, device=x.device))
        for block in self.dit.blocks:
            h = block(h, mod, rope, ctx, ctx_mask)
        return self.dit.head(h)
