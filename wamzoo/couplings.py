"""Mixture-of-Transformers coupling: one shared masked attention over all experts' tokens.

The coupling of Fast-WAM (§3.1) and AHA-WAM; X-WAM's single full-attention sequence is the
same mechanism with one expert's blocks shared by every token kind: an action expert that requires
``backbone`` reads the world model's blocks from ``cond.backbone`` and builds its token sets on them.
It requires both parts to provide ``tokens``. The mask is declared by rules over token groups (:mod:`wamzoo.nn.masks`),
so variants are configuration. Streams flagged ``readout`` (predicted, not denoised: X-WAM's depth)
are computed when needed like denoised ones.

At inference, :meth:`MoTCoupling.prefill` finds the tokens that stay fixed while the active
streams are denoised *and* only attend to fixed tokens, runs them once, and caches their per-layer
keys/values; :meth:`MoTCoupling.step` then runs only the remaining tokens against the cache (and
re-embeds only the components that have tokens to run: the mask and the rest come from the prefill).
With Fast-WAM's first-frame-causal mask this is exactly "one pass of the video expert over the
clean current frame, then the action denoising steps" (§3.3), derived from the mask rather than
special-cased. Every pass also skips the tokens that no needed token attends to (directly or
through other tokens): streams not ``needed`` (a zero loss weight) or not active cost nothing when
the mask hides them, e.g. Fast-WAM's future frames in its no-video ablation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import Tensor

from wamzoo.composition import caps
from wamzoo.interfaces import ActionExpert, Conditioning, Coupling, Stream, WorldModel
from wamzoo.nn.attention import KVCache
from wamzoo.nn.masks import MaskRules, TokenGroup, closed_subset
from wamzoo.nn.mot import TokenSet, assign_indices, run_layers


@dataclass
class Prefilled:
    cache: KVCache
    keep: Tensor  # [N] bool: tokens whose keys/values are cached
    needed: Tensor | None = None  # [N] bool: tokens the active streams depend on (None: all)
    active: set[str] | None = None  # the streams prefilled for
    #: ``(sets, n_world, groups, mask, num_layers)`` of the prefill: a step re-embeds only the
    #: components that have tokens to run and reuses the rest, and the mask.
    layout: tuple | None = None
    #: Per set of active streams, what every step recomputes identically: the tokens to run (``"run"``, and
    #: their ``"selection"`` per set) and each layer's attention mask (:func:`~wamzoo.nn.mot.run_layers`).
    memos: dict = field(default_factory=dict)


def needed_tokens(mask: Tensor, seeds: Tensor) -> Tensor:
    """``seeds`` plus every token they attend to, directly or through other tokens."""
    need = seeds.clone()
    while True:
        new = need | mask[need].any(dim=0)
        if torch.equal(new, need):
            return need
        need = new


class MoTCoupling(Coupling):
    """Shared masked attention over the world model's and the action expert's tokens.

    Args:
        mask: rules ``{"query_group -> key_group": kind}`` (see :mod:`wamzoo.nn.masks`).
        grad_checkpoint: recompute each layer in the backward pass to save memory.
    """

    requires = {"world_model": caps("tokens"), "action_expert": caps("tokens")}

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

    @staticmethod
    def dependencies(sets: list[TokenSet], mask: Tensor) -> Tensor:
        """``mask`` plus each forked branch token's dependence on the token it starts from."""
        forked = [s for s in sets if s.source_index is not None]
        if not forked:
            return mask
        deps = mask.clone()
        for s in forked:
            deps[s.index, s.source_index] = True
        return deps

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
    @staticmethod
    def seed_tokens(groups: list[TokenGroup], wanted: set[str], device) -> Tensor:
        """``[N]`` bool: the tokens of the streams ``wanted`` (where :func:`needed_tokens` starts)."""
        return torch.cat([torch.full((g.size,), g.stream in wanted, dtype=torch.bool)
                          for g in groups]).to(device)

    def run_tokens(self, world_model, action_expert, sets, n_world, mask, num_layers, run: Tensor,
                   wanted: set[str], streams, cache: KVCache | None = None, memo: dict | None = None) -> dict[str, Tensor]:
        """The engine: run the tokens where ``run`` is True through every layer under ``mask`` (others come
        from ``cache`` or are not needed) and return the ``wanted`` streams' outputs from the heads of
        their owners (``sets[:n_world]`` belong to ``world_model``, the rest to ``action_expert``;
        either may be ``None`` when it owns no set). ``memo``: see :func:`~wamzoo.nn.mot.run_layers`."""
        masks, whole, some = _selection(run, sets, memo)
        part = [s if w else s.select(m) for s, m, w, a in zip(sets, masks, whole, some) if a]
        outs = iter(run_layers(part, mask, num_layers, cache=cache, memo=memo,
                               grad_checkpoint=self.grad_checkpoint and self.training))
        hidden, present = [], []
        for i, (s, m) in enumerate(zip(sets, masks)):
            if not some[i]:
                continue
            h = next(outs)
            if not whole[i]:
                full = h.new_zeros(s.x.shape)
                full[:, m] = h
                h = full
            hidden.append(h)
            present.append(i)
        n_w = sum(1 for i in present if i < n_world)
        return self._heads(world_model, action_expert, [sets[i] for i in present], n_w, hidden, streams, wanted)

    def forward(self, world_model, action_expert, streams, cond):
        sets, n_world, groups, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        wanted = {k for k, s in streams.items() if (s.denoised or s.readout) and cond.needs(k)}
        run = needed_tokens(self.dependencies(sets, mask), self.seed_tokens(groups, wanted, mask.device))
        return self.run_tokens(world_model, action_expert, sets, n_world, mask, num_layers, run, wanted, streams)

    def prefill(self, world_model, action_expert, streams, cond, active):
        sets, n_world, groups, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        deps = self.dependencies(sets, mask)
        fixed = torch.cat([torch.full((g.size,), g.cond or g.stream not in active, dtype=torch.bool)
                           for g in groups]).to(mask.device)
        needed = needed_tokens(deps, self.seed_tokens(groups, set(active), mask.device) & ~fixed)
        keep = closed_subset(deps, fixed) & needed
        cache = KVCache()
        if not torch.is_grad_enabled():  # the context is fixed until the next prefill: reuse its keys/values
            for s in sets:
                s.context_kv = {}
        if keep.any():
            part = [s.select(keep[s.index]) for s in sets if keep[s.index].any()]
            run_layers(part, mask, num_layers, record=cache, hidden=False)
        return Prefilled(cache, keep, needed, set(active), (sets, n_world, groups, mask, num_layers))

    def _reembed(self, world_model, action_expert, streams, cond, sets, n_world, groups, run, memo):
        """The prefill's token sets with those of every component that has tokens to ``run`` re-embedded."""
        live = _selection(run, sets, memo)[2]
        wsets = world_model.embed(streams, cond) if any(live[:n_world]) else sets[:n_world]
        asets = action_expert.embed(streams, cond) if any(live[n_world:]) else sets[n_world:]
        new = list(wsets) + list(asets)
        if [g.size for s in new for g in s.groups] != [g.size for g in groups]:
            raise RuntimeError("token groups changed between prefill and step; prefill again")
        for fresh, old in zip(new, sets):  # same layout: same global indices; cross-attention keys/values
            fresh.index, fresh.source_index = old.index, old.source_index  # stay valid while the context does
            same = fresh.context is not None and old.context is not None and (
                fresh.context is old.context or torch.equal(fresh.context, old.context))
            fresh.context_kv = old.context_kv if same else None
        return new, len(wsets)

    def step(self, world_model, action_expert, streams, cond, active, context):
        if context is None:
            return super().step(world_model, action_expert, streams, cond, active, context)
        if context.layout is not None:  # groups and mask are those of the prefill
            sets, n_world, groups, mask, num_layers = context.layout
        else:
            sets, n_world, groups, mask, num_layers = self.token_sets(world_model, action_expert, streams, cond)
        memo = context.memos.setdefault(frozenset(active), {})
        if "run" not in memo:
            needed = context.needed if context.needed is not None else torch.ones_like(context.keep)
            extra = set(active) - context.active if context.active is not None else set()
            if extra:  # streams asked for beyond the prefilled ones (e.g. a readout at the last step)
                needed = needed | needed_tokens(self.dependencies(sets, mask),
                                                self.seed_tokens(groups, extra, mask.device))
            memo["run"] = needed & ~context.keep
        run = memo["run"]
        if context.layout is not None:
            sets, n_world = self._reembed(world_model, action_expert, streams, cond, sets, n_world, groups, run, memo)
        return self.run_tokens(world_model, action_expert, sets, n_world, mask, num_layers, run, set(active), streams,
                               cache=context.cache, memo=memo)


def _selection(run: Tensor, sets: list[TokenSet], memo: dict | None) -> tuple[list[Tensor], list[bool], list[bool]]:
    """Per set: which of its tokens ``run`` ``[N]`` holds, whether all of them, whether any (kept in ``memo``)."""
    if memo is not None and "selection" in memo:
        return memo["selection"]
    masks = [run[s.index] for s in sets]
    whole = [bool(m.all()) for m in masks]
    found = (masks, whole, [w or bool(m.any()) for m, w in zip(masks, whole)])
    if memo is not None:
        memo["selection"] = found
    return found
