"""Block attention masks built from token groups and declarative rules.

Every token belongs to a named group (``video.cond``, ``video.future``, ``action``, ...) and has an
``index`` (its frame or chunk). A rule says how queries of one group see keys of another::

    rules = {"video.cond -> video.cond": "all", "video.future -> video.*": "all",
             "action -> action": "all", "action -> video.cond": "all"}   # Fast-WAM §3.2

Kinds: ``all``, ``none``, ``causal`` (key index <= query index), ``strict`` (key index < query
index), ``same`` (equal index). Group patterns are shell wildcards; a later rule overrides an
earlier one; pairs no rule names are ``none``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor

RULE_KINDS = ("all", "none", "causal", "strict", "same")


@dataclass
class TokenGroup:
    """A contiguous run of ``size`` tokens of one stream."""

    name: str
    size: int
    stream: str = ""
    #: True if the tokens are clean conditioning (fixed during sampling).
    cond: bool = False
    #: Per-token frame/chunk index ``[size]`` for ordered rules (default: all zero).
    index: Tensor | None = None

    def indices(self) -> Tensor:
        return torch.zeros(self.size, dtype=torch.float32) if self.index is None else self.index.float()


class MaskRules:
    """Parsed ``"query -> key": kind`` rules."""

    def __init__(self, rules: Mapping[str, str] | Sequence[tuple[str, str, str]]):
        parsed: list[tuple[str, str, str]] = []
        items = rules.items() if isinstance(rules, Mapping) else [(f"{q} -> {k}", r) for q, k, r in rules]
        for key, kind in items:
            if "->" not in key:
                raise ValueError(f"mask rule {key!r} must read 'query_group -> key_group'")
            if kind not in RULE_KINDS:
                raise ValueError(f"mask rule {key!r} has kind {kind!r}; kinds are {', '.join(RULE_KINDS)}")
            q, k = (s.strip() for s in key.split("->"))
            parsed.append((q, k, kind))
        self.rules = parsed
        self._built: dict[tuple, Tensor] = {}  # layouts seen (every call of a policy has the same one)

    def build(self, groups: Sequence[TokenGroup], device: torch.device | str | None = None) -> Tensor:
        """Boolean mask ``[N, N]`` (True = the query may attend to the key); a fresh tensor each call (the
        mask of a layout seen before is copied from the last few built)."""
        key = tuple((g.name, g.size, None if g.index is None else tuple(g.index.tolist())) for g in groups)
        if key not in self._built:
            if len(self._built) >= 8:
                self._built.pop(next(iter(self._built)))
            self._built[key] = self._build(groups)
        mask = self._built[key]
        return mask.to(device, copy=True) if device is not None else mask.clone()

    def _build(self, groups: Sequence[TokenGroup]) -> Tensor:
        sizes = [g.size for g in groups]
        n = sum(sizes)
        mask = torch.zeros(n, n, dtype=torch.bool)
        starts = [sum(sizes[:i]) for i in range(len(groups))]
        for q, k, kind in self.rules:
            for gq, sq in zip(groups, starts):
                if not fnmatch.fnmatch(gq.name, q):
                    continue
                for gk, sk in zip(groups, starts):
                    if not fnmatch.fnmatch(gk.name, k):
                        continue
                    mask[sq: sq + gq.size, sk: sk + gk.size] = _block(kind, gq.indices(), gk.indices())
        return mask

    def to_dict(self) -> dict[str, str]:
        return {f"{q} -> {k}": kind for q, k, kind in self.rules}


def _block(kind: str, iq: Tensor, ik: Tensor) -> Tensor:
    if kind == "all":
        return torch.ones(len(iq), len(ik), dtype=torch.bool)
    if kind == "none":
        return torch.zeros(len(iq), len(ik), dtype=torch.bool)
    if kind == "causal":
        return ik[None, :] <= iq[:, None]
    if kind == "strict":
        return ik[None, :] < iq[:, None]
    return ik[None, :] == iq[:, None]


def closed_subset(mask: Tensor, fixed: Tensor) -> Tensor:
    """Largest subset of ``fixed`` tokens that attend only inside the subset.

    Those tokens' hidden states cannot depend on anything that changes, so their per-layer keys
    and values can be computed once and cached (Fast-WAM's video prefill, §3.3).
    """
    keep = fixed.clone()
    while True:
        leaks = (mask & ~keep[None, :]).any(dim=1)
        new = keep & ~leaks
        if torch.equal(new, keep):
            return keep
        keep = new
