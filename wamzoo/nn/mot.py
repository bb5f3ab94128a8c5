"""Mixture-of-Transformers: several experts, each with its own blocks, one shared masked attention.

Every expert turns its streams into a :class:`TokenSet` (tokens, AdaLN modulation, RoPE angles,
its blocks and cross-attention context). At each layer the engine asks every set for Q/K/V,
concatenates them, runs one attention under the global mask, and hands each set its slice back
for the rest of its block (Fast-WAM §3.1). Sets may share blocks (one transformer over several
token kinds, X-WAM) or join at a later layer (X-WAM's depth branch, §3.3). A set joining later may
start from other tokens' hidden states at that layer (``source``: a branch forked from them), and a
``branch`` set attends in its own call, so the rest of the model computes bit for bit as without it.
An expert without blocks of its own can ride on another's (:class:`Backbone`).

Keys/values can be recorded into a :class:`~wamzoo.nn.attention.KVCache` and reused by later calls
that only run the remaining tokens: since tokens are processed independently outside attention,
cached inference equals the full forward up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wamzoo import fastpath
from wamzoo.nn.attention import KVCache, attention
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.rope import rope_rotation


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
    context_mask: Tensor | None = None  # [B, L] bool, or [B, N, L]: which context tokens each token reads
    first_layer: int = 0
    #: Global token indices (columns of the mask); set by :func:`assign_indices`.
    index: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Names of token groups (of other sets) whose hidden states entering ``first_layer`` become this
    #: set's tokens, in order (a branch forked from them, X-WAM's depth branch); ``x`` then only gives
    #: the shape. Resolved to global indices (``source_index``) by :func:`assign_indices`.
    source: Sequence[str] | None = None
    source_index: Tensor | None = None
    #: Attend in a separate call: no token outside the set may attend to its keys (checked), so the
    #: other sets compute exactly, bit for bit, as without it (X-WAM: the main branch never reads depth).
    branch: bool = False
    #: Per-layer cross-attention keys/values of ``context``, filled on first use and shared by the
    #: sets of later passes while the context stays fixed (the denoising steps of one inference).
    context_kv: dict[int, tuple[Tensor, Tensor]] | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.x.shape[1])

    def select(self, keep: Tensor) -> "TokenSet":
        """The tokens where the boolean ``keep`` ``[N]`` is True."""
        rope = self.rope[keep] if self.rope.ndim == 2 else self.rope[:, keep]
        per_token = self.context_mask is not None and self.context_mask.ndim == 3
        return replace(self, x=self.x[:, keep], mod=self.mod[:, keep], rope=rope,
                       temb=None if self.temb is None else self.temb[:, keep],
                       index=None if self.index is None else self.index[keep],
                       source_index=None if self.source_index is None else self.source_index[keep],
                       context_mask=self.context_mask[:, keep] if per_token else self.context_mask)


@dataclass
class Backbone:
    """A world model's transformer lent to an expert that has none (X-WAM runs its action and state
    MLP tokens through the video DiT's blocks). The expert builds :class:`TokenSet` s on ``blocks``
    with modulation from ``embed_time`` (``t [B, N] -> (temb [B, N, D], mod [B, N, 6, D])``)."""

    blocks: nn.ModuleList
    embed_time: Callable[[Tensor], tuple[Tensor, Tensor]]
    dim: int
    head_dim: int
    rope_theta: float = 10000.0
    context: Tensor | None = None
    context_mask: Tensor | None = None


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
    for s in sets:
        if s.source is not None:
            s.source_index = _group_indices(sets, s.source, s)
    return groups


def _group_indices(sets: Sequence[TokenSet], names: Sequence[str], owner: TokenSet) -> Tensor:
    found: dict[str, Tensor] = {}
    for s in sets:
        if s is owner:
            continue
        start = 0
        for g in s.groups:
            found[g.name] = s.index[start: start + g.size]
            start += g.size
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"branch source group(s) {missing} are not among the other sets' groups {sorted(found)}")
    index = torch.cat([found[n] for n in names]) if names else owner.index[:0]
    if len(index) != owner.num_tokens:
        raise ValueError(f"branch source groups {list(names)} hold {len(index)} tokens but the set has"
                         f" {owner.num_tokens}")
    return index


def run_layers(sets: Sequence[TokenSet], mask: Tensor, num_layers: int, *, cache: KVCache | None = None,
               record: KVCache | None = None, grad_checkpoint: bool = False, hidden: bool = True,
               memo: dict | None = None) -> list[Tensor]:
    """Run all layers; returns the final hidden states of every set.

    ``mask`` is the global ``[N, N]`` mask indexed by the sets' ``index`` (or ``[B, N, N]``, one per sample). ``cache`` supplies
    keys/values of tokens not present in ``sets``; ``record`` receives this call's keys/values.
    ``hidden=False``: the caller keeps only ``record`` (a prefill), so on the fast path
    (:mod:`wamzoo.fastpath`) the last layer stops after its keys/values and the states returned are
    those entering it. ``memo`` keeps each layer's attention mask (gathered from ``mask``) for later calls
    that run the same tokens against the same ``cache`` (the denoising steps after one prefill).
    """
    kv_only = not hidden and record is not None and fastpath.enabled()
    xs = [s.x for s in sets]
    sets = [_per_pass(s) for s in sets]
    for layer in range(num_layers):
        live = [i for i, s in enumerate(sets) if s.first_layer <= layer]
        if not live:
            continue
        for i in live:
            if sets[i].source_index is not None and sets[i].first_layer == layer:
                xs[i] = _fork(sets, xs, i, layer)
        if kv_only and layer == num_layers - 1:
            for i in sorted(live, key=lambda i: sets[i].branch):  # _layer's order: main sets, then branches
                s = sets[i]
                _, k, v = s.blocks[layer - s.first_layer].attention_inputs(xs[i], s.mod, s.rope)
                record.append(layer, k, v, s.index)
            continue
        fn = _layer
        args = (layer, [sets[i] for i in live], [xs[i] for i in live], mask, cache, record, memo)
        outs = checkpoint(fn, *args, use_reentrant=False) if grad_checkpoint and torch.is_grad_enabled() \
            else fn(*args)
        for i, x in zip(live, outs):
            xs[i] = x
    return xs


def _per_pass(s: TokenSet) -> TokenSet:
    """What every layer of a pass would otherwise redo: the RoPE rotations, and dropping a context mask that
    hides nothing (so cross-attention runs unmasked, as :func:`~wamzoo.nn.attention.attention` would)."""
    rope = s.rope if s.rope.is_complex() else rope_rotation(s.rope)
    full = s.context_mask is not None and bool(s.context_mask.all())
    return replace(s, rope=rope, context_mask=None if full else s.context_mask)


def _fork(sets: Sequence[TokenSet], xs: list[Tensor], i: int, layer: int) -> Tensor:
    """Hidden states of set ``i``'s source tokens as they enter ``layer`` (gathered from the sets that
    hold them; experts of other widths that hold none are left alone)."""
    want = sets[i].source_index
    out, found = None, torch.zeros(len(want), dtype=torch.bool, device=want.device)
    for j, s in enumerate(sets):  # sets whose states entering `layer` are real hidden states
        if j == i or not (s.first_layer < layer or s.first_layer == layer and s.source_index is None):
            continue
        hit = torch.isin(want, s.index)
        if not bool(hit.any()):
            continue
        order = s.index.argsort()
        part = xs[j][:, order[torch.searchsorted(s.index[order], want[hit])]]
        if out is None:
            out = part.new_zeros(part.shape[0], len(want), part.shape[-1])
        out[:, hit] = part
        found |= hit
    if out is None or not bool(found.all()):
        raise ValueError(f"branch source tokens are not computed in this pass (layer {layer}); a coupling"
                         " must run every token a branch is forked from")
    return out


def _layer(layer: int, sets: list[TokenSet], xs: list[Tensor], mask: Tensor, cache: KVCache | None,
           record: KVCache | None, memo: dict | None = None) -> list[Tensor]:
    blocks = [s.blocks[layer - s.first_layer] for s in sets]
    mods = [block.modulation(s.mod) for block, s in zip(blocks, sets)]  # shared by both halves of the layer
    qkv = [block.attention_inputs(x, m, s.rope) for block, m, s, x in zip(blocks, mods, sets, xs)]
    main = [i for i, s in enumerate(sets) if not s.branch]
    side = [i for i, s in enumerate(sets) if s.branch]
    order = main + side
    k = _cat([qkv[i][1] for i in order], 1)
    v = _cat([qkv[i][2] for i in order], 1)
    ik = _cat([sets[i].index for i in order])
    if record is not None:
        record.append(layer, k, v, ik)
    cached = cache.get(layer) if cache is not None else None
    if cached is not None:
        k, v, ik = torch.cat([cached[0], k], 1), torch.cat([cached[1], v], 1), torch.cat([cached[2], ik])
    n_main = len(ik) - sum(xs[i].shape[1] for i in side)
    outs: dict[int, Tensor] = {}
    for part in (main, side):
        if not part:
            continue
        q = _cat([qkv[i][0] for i in part], 1)
        iq = _cat([sets[i].index for i in part])
        kk, vv, ikk = (k[:, :n_main], v[:, :n_main], ik[:n_main]) if part is main and side else (k, v, ik)
        key = (layer, part is main)
        sub = memo.get(key, False) if memo is not None else False
        if sub is False:
            if part is main and side and bool(mask[..., iq, :][..., ik[n_main:]].any()):
                # the main sets must attend exactly as if the branches were absent
                raise ValueError("tokens outside a `branch` set attend to its keys; fix the mask or drop `branch`")
            sub = mask[..., iq[:, None], ikk[None, :]]
            sub = None if bool(sub.all()) else sub  # a full mask lets the fused kernel run
            if memo is not None:
                memo[key] = sub
        out, start = attention(q, kk, vv, sub), 0
        for i in part:
            n = xs[i].shape[1]
            outs[i] = out[:, start: start + n]
            start += n
    return [blocks[i].finish(x, outs[i], mods[i], s.context, s.context_mask, _context_kv(s, layer))
            for i, (s, x) in enumerate(zip(sets, xs))]


def _cat(xs: list[Tensor], dim: int = 0) -> Tensor:
    """``torch.cat``, without a copy of a lone tensor (a denoising step runs one expert's tokens)."""
    return xs[0] if len(xs) == 1 else torch.cat(xs, dim)


def _context_kv(s: TokenSet, layer: int) -> tuple[Tensor, Tensor] | None:
    block = s.blocks[layer - s.first_layer]
    if s.context_kv is None or s.context is None or getattr(block, "attn2", None) is None:
        return None
    if layer not in s.context_kv:
        s.context_kv[layer] = block.attn2.kv(s.context)
    return s.context_kv[layer]
