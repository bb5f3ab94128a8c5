"""Mixture-of-Transformers coupling: one shared masked attention over all experts' tokens.

The coupling of Fast-WAM (§3.1) and AHA-WAM; X-WAM's single full-attention sequence is the
same mechanism with one expert's blocks shared by every token kind. The mask is declared by
rules over token groups (:mod:`wamzoo.nn.masks`), so variants are configuration.

At inference, :meth:`MoTCoupling.prefill` finds the tokens that stay fixed while the active
streams are denoised *and* only attend to fixed tokens, runs them once, and caches their per-layer
keys/values; :meth:`MoTCoupling.step` then runs only the remaining tokens against the cache.
With Fast-WAM's first-frame-causal mask this is exactly "one pass of the video expert over the
clean current frame, then the action denoising steps" (§3.3), derived from the mask rather than
special-cased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from wamzoo.interfaces import ActionExpert, Conditioning, Coupling, Stream, WorldModel
from wamzoo.nn.attention import KVCache
from wamzoo.nn.masks import MaskRules, TokenGroup, closed_subset
from wamzoo.nn.mot import TokenSet, assign_indices, run_layers


@dataclass
class Prefilled:
    cache: KVCache
    keep: Tensor  # [N] bool: tokens whose keys/values are cached


class MoTCoupling(Coupling):
    """Shared masked attention over the world model's and the action expert's tokens.

    Args:
        mask: rules ``{"query_group -> key_group": kind}`` (see :mod:`wamzoo.nn.masks`).
        grad_checkpoint: recompute each layer in the backward pass to save memory.
    """

    def __init__(self, mask: dict[str, str], grad_checkpoint: bool = False):
        super().__init__()
        self.rules = MaskRules(dict(mask))
        self.grad_checkpoint = grad_checkpoint

    # -- building ---------------------------------------------------------------------------
    def token_sets(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
                   cond: Conditioning) -> tuple[list[TokenSet], int, list[TokenGroup], Tensor, int]:
        wsets = world_model.embed(streams, cond)
        asets = action_expert.embed(streams, cond)
        sets = wsets + asets
        groups = assign_indices(sets)
        mask = self.rules.build(groups, device=sets[0].x.device)
        num_layers = max(s.first_layer + len(s.blocks) for s in sets)
        return sets, len(wsets), groups, mask, num_layers

    def attention_mask(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
                       cond: Conditioning) -> tuple[Tensor, list[TokenGroup]]:
        """The global mask and the token groups it is built from (for inspection and tests)."""
        _, _, groups, mask, _ = self.token_sets(world_model, action_expert, streams, cond)
        return mask, groups

    def _heads(self, world_model, action_expert, sets, n_world, hidden, streams, wanted) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for component, part, h in ((world_model, sets[:n_world], hidden[:n_world]),
                                   (action_expert, sets[n_world:], hidden[n_world:])):
            owned = {g.stream for s in part for g in s.groups}
            if part and owned & wanted:
                out.update(component.head(part, h, streams))
        return {k: v for k, v in out.items() if k in wanted}

    # -- passes -----------------------------------------------------------------------------
    def forward(self, world_model, action_expert, streams, cond):
        sets, n_world, _, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        hidden = run_layers(sets, mask, num_layers, grad_checkpoint=self.grad_checkpoint and self.training)
        wanted = {k for k, s in streams.items() if s.denoised}
        return self._heads(world_model, action_expert, sets, n_world, hidden, streams, wanted)

    def prefill(self, world_model, action_expert, streams, cond, active):
        sets, _, groups, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        fixed = torch.cat([torch.full((g.size,), g.cond or g.stream not in active, dtype=torch.bool)
                           for g in groups]).to(mask.device)
        keep = closed_subset(mask, fixed)
        if not keep.any():
            return None
        cache = KVCache()
        part = [s.select(keep[s.index]) for s in sets if keep[s.index].any()]
        run_layers(part, mask, num_layers, record=cache)
        return Prefilled(cache, keep)

    def step(self, world_model, action_expert, streams, cond, active, context):
        if context is None:
            return super().step(world_model, action_expert, streams, cond, active, context)
        sets, n_world, _, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        live = [~context.keep[s.index] for s in sets]
        run = [s.select(m) for s, m in zip(sets, live) if m.any()]
        outs = iter(run_layers(run, mask, num_layers, cache=context.cache))
        hidden = []
        for s, m in zip(sets, live):
            if m.any():
                full = torch.zeros_like(s.x)
                full[:, m] = next(outs)
                hidden.append(full)
            else:
                hidden.append(None)
        keep_sets = [i for i, m in enumerate(live) if m.any()]
        n_w = sum(1 for i in keep_sets if i < n_world)
        return self._heads(world_model, action_expert, [sets[i] for i in keep_sets], n_w,
                           [hidden[i] for i in keep_sets], streams, set(active))
