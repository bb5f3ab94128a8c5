"""Normalisation of state and action with dataset statistics kept inside the policy.

Statistics (``min``, ``max``, ``mean``, ``std``, ``q01``, ``q99`` per key) are buffers, so they are
saved with the weights and a loaded policy can never run "blind". Modes per key:

- ``min_max``: ``[min, max] -> [-1, 1]`` (Fast-WAM),
- ``quantile``: ``[q01, q99] -> [-1, 1]`` (X-WAM),
- ``mean_std``: ``(x - mean) / std``,
- ``identity``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from wamzoo.errors import StatsError

MODES = ("min_max", "quantile", "mean_std", "identity")
STATS = ("min", "max", "mean", "std", "q01", "q99")
_EPS = 1e-6


class Normalizer(nn.Module):
    """Normalises ``state`` and ``action`` (and any other key given statistics).

    Every key of ``required`` (what the policy normalises) needs statistics unless its mode is
    ``identity``: a missing one raises :class:`~wamzoo.errors.StatsError`, never leaves it unnormalised.
    Its statistics stay float32 at any precision of the policy (:func:`wamzoo.runtime.place`).
    """

    keeps_float32 = True

    def __init__(self, stats: Mapping[str, Mapping[str, list[float]]], modes: Mapping[str, str] | None = None,
                 required: Sequence[str] = ()):
        super().__init__()
        self.modes = dict(modes or {})
        for key, mode in self.modes.items():
            if mode not in MODES:
                raise ValueError(f"normalisation mode {mode!r} for {key!r}; choose one of {', '.join(MODES)}")
        absent = [k for k in required if k not in stats and self.modes.get(k, "min_max") != "identity"]
        lacking = {k: [s for s in STATS if s not in stats[k]] for k in stats}
        problems = ([f"no statistics for {', '.join(map(repr, absent))}"] if absent else []) + [
            f"the statistics of {k!r} lack {', '.join(v)}" for k, v in lacking.items() if v]
        if problems:
            detail = "; ".join(problems)
            raise StatsError(f"{detail} (stats.json must hold {', '.join(STATS)} of every quantity the policy"
                             " normalises); recompute a dataset's with `wamzoo data stats DIR --force`", detail)
        self.keys = sorted(stats)
        for key in self.keys:
            for stat in STATS:
                self.register_buffer(f"{key}_{stat}", torch.as_tensor(stats[key][stat], dtype=torch.float32))

    def stats(self) -> dict[str, dict[str, list[float]]]:
        return {k: {s: getattr(self, f"{k}_{s}").tolist() for s in STATS} for k in self.keys}

    def _affine(self, key: str) -> tuple[Tensor, Tensor] | None:
        mode = self.modes.get(key, "min_max")
        if key not in self.keys or mode == "identity":
            return None
        g = lambda s: getattr(self, f"{key}_{s}")  # noqa: E731
        if mode == "mean_std":
            return g("mean"), g("std").clamp(min=_EPS)
        lo, hi = (g("min"), g("max")) if mode == "min_max" else (g("q01"), g("q99"))
        return (hi + lo) / 2, ((hi - lo) / 2).clamp(min=_EPS)

    def normalize(self, key: str, x: Tensor) -> Tensor:
        aff = self._affine(key)
        return x if aff is None else (x - aff[0].to(x)) / aff[1].to(x)

    def unnormalize(self, key: str, x: Tensor) -> Tensor:
        aff = self._affine(key)
        return x if aff is None else x * aff[1].to(x) + aff[0].to(x)


def compute_stats(x: Tensor) -> dict[str, list[float]]:
    """Statistics of ``x`` ``[N, D]`` over its first dimension."""
    x = x.double()
    q = torch.quantile(x[torch.randperm(len(x))[:200_000]], torch.tensor([0.01, 0.99], dtype=torch.float64), dim=0)
    return {"min": x.min(0).values.tolist(), "max": x.max(0).values.tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist() if len(x) > 1 else [1.0] * x.shape[1], "q01": q[0].tolist(), "q99": q[1].tolist()}
