"""Masked scaled-dot-product attention and the per-layer KV cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Attention over ``[B, N, H, D]`` tensors; ``mask`` ``[Nq, Nk]`` or ``[B, Nq, Nk]``, True = attend.

    Returns ``[B, Nq, H * D]``. A fully-True mask is dropped so the fused kernel can run.
    """
    if mask is not None:
        if bool(mask.all()):
            mask = None
        elif mask.ndim == 3:
            mask = mask[:, None]
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2).flatten(2)


@dataclass
class KVCache:
    """Keys and values per layer of tokens whose hidden states stay fixed.

    ``index[l]`` holds the global token indices (columns of the attention mask) of the cached
    keys at layer ``l``; experts that join at a later layer simply have no entries before it.
    """

    keys: dict[int, Tensor] = field(default_factory=dict)
    values: dict[int, Tensor] = field(default_factory=dict)
    index: dict[int, Tensor] = field(default_factory=dict)

    def append(self, layer: int, k: Tensor, v: Tensor, index: Tensor) -> None:
        if layer in self.keys:
            k = torch.cat([self.keys[layer], k], dim=1)
            v = torch.cat([self.values[layer], v], dim=1)
            index = torch.cat([self.index[layer], index])
        self.keys[layer], self.values[layer], self.index[layer] = k, v, index

    def get(self, layer: int) -> tuple[Tensor, Tensor, Tensor] | None:
        if layer not in self.keys:
            return None
        return self.keys[layer], self.values[layer], self.index[layer]

    def drop(self, keep: Tensor) -> None:
        """Keep only cached tokens whose global index is in ``keep`` (rolling memories)."""
        for layer in list(self.keys):
            sel = torch.isin(self.index[layer], keep)
            self.keys[layer] = self.keys[layer][:, sel]
            self.values[layer] = self.values[layer][:, sel]
            self.index[layer] = self.index[layer][sel]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def num_tokens(self) -> int:
        return max((int(i.numel()) for i in self.index.values()), default=0)
