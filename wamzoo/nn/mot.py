"""Mixture-of-Transformers: several experts, each with its own blocks, one shared masked attention.

Every expert turns its streams into a :class:`TokenSet` (tokens, AdaLN modulation, RoPE angles,
its blocks and cross-attention context). At each layer the engine asks every set for Q/K/V,
concatenates them, runs one attention under the global mask, and hands each set its slice back
for the rest of its block (Fast-WAM §3.1). Sets may share blocks (one transformer over several
token kinds, X-WAM) or join at a later layer (X-WAM's depth branch, §3.3).

Keys/values can be recorded into a :class:`~wamzoo.nn.attention.KVCache` and reused by later calls
that only run the remaining tokens: since tokens are processed independently outside attention,
cached inference equals the full forward up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wamzoo.nn.attention import KVCache, attention
from wamzoo.nn.masks import TokenGroup


@dataclass
class TokenSet:
    """Tokens of one expert entering the shared attention."""

    x: Tensor                     # [B, N, D]
    mod: Tensor                   # [B, N, 6, D] AdaLN modulation (per token)
    rope: Tensor                  # [N, head_dim/2] or [B, N, head_dim/2] angles
    blocks: nn.ModuleList         # layer l uses blocks[l - first_layer]
    groups: list[TokenGroup]      # cover the N tokens in order
    temb: Tensor | None = None    # [B, N, D] for the output head
    context: Tensor | None = None  # [B, L, D] cross-attention context
    context_mask: Tensor | None = None  # [B, L] bool
    first_layer: int = 0
    #: Global token indices (columns of the mask); set by :func:`assign_indices`.
    index: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(self.x.shape[1])

    def select(self, keep: Tensor) -> "TokenSet":
        """The tokens where the boolean ``keep`` ``[N]`` is True."""
        rope = self.rope[keep] if self.rope.ndim == 2 else self.rope[:, keep]
        return replace(self, x=self.x[:, keep], mod=self.mod[:, keep], rope=rope,
                       temb=None if self.temb is None else self.temb[:, keep],
                       index=None if self.index is None else self.index[keep])


def assign_indices(sets: Sequence[TokenSet]) -> list[TokenGroup]:
    """Give every token a global index (set order) and return all groups in that order."""
    start, groups = 0, []
    for s in sets:
        n = sum(g.size for g in s.groups)
        if n != s.num_tokens:
            raise ValueError(f"token groups cover {n} tokens but the set has {s.num_tokens}")
        s.index = torch.arange(start, start + n, device=s.x.device)
        start += n
        groups += s.groups
    return groups


def run_layers(sets: Sequence[TokenSet], mask: Tensor, num_layers: int, *, cache: KVCache | None = None,
               record: KVCache | None = None, grad_checkpoint: bool = False) -> list[Tensor]:
    """Run all layers; returns the final hidden states of every set.

    ``mask`` is the global ``[N, N]`` mask indexed by the sets' ``index``. ``cache`` supplies
    keys/values of tokens not present in ``sets``; ``record`` receives this call's keys/values.
    """
    xs = [s.x for s in sets]
    for layer in range(num_layers):
        live = [i for i, s in enumerate(sets) if s.first_layer <= layer]
        if not live:
            continue
        fn = _layer
        args = (layer, [sets[i] for i in live], [xs[i] for i in live], mask, cache, record)
        outs = checkpoint(fn, *args, use_reentrant=False) if grad_checkpoint and torch.is_grad_enabled() \
            else fn(*args)
        for i, x in zip(live, outs):
            xs[i] = x
    return xs


def _layer(layer: int, sets: list[TokenSet], xs: list[Tensor], mask: Tensor, cache: KVCache | None,
           record: KVCache | None) -> list[Tensor]:
    qs, ks, vs, idx = [], [], [], []
    for s, x in zip(sets, xs):
        q, k, v = s.blocks[layer - s.first_layer].attention_inputs(x, s.mod, s.rope)
        qs.append(q), ks.append(k), vs.append(v), idx.append(s.index)
    q, k, v, iq = torch.cat(qs, 1), torch.cat(ks, 1), torch.cat(vs, 1), torch.cat(idx)
    if record is not None:
        record.append(layer, k, v, iq)
    ik = iq
    cached = cache.get(layer) if cache is not None else None
    if cached is not None:
        k, v, ik = torch.cat([cached[0], k], 1), torch.cat([cached[1], v], 1), torch.cat([cached[2], iq])
    out = attention(q, k, v, mask[iq][:, ik])
    res, start = [], 0
    for s, x in zip(sets, xs):
        n = x.shape[1]
        res.append(s.blocks[layer - s.first_layer].finish(x, out[:, start: start + n], s.mod, s.context,
                                                          s.context_mask))
        start += n
    return res
