"""The one sampling loop: denoise the streams an inference plan names, phase by phase.

Used by :meth:`wamzoo.policy.WAMPolicy.predict` and by any component that samples inside a pass
(HarmoWAM's training-time imagination), so every composition samples the same way. In each phase
the coupling first prefills what stays fixed while the phase's streams change (e.g. Fast-WAM's
video KV cache), then every step asks it for the velocities of the streams still being denoised
and advances each with its sampler. Conditioning units keep their clean values and ``t = 0``.
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, Sequence, Union

import torch

from wamzoo.interfaces import ActionExpert, Conditioning, Coupling, Phase, Stream, WorldModel
from wamzoo.samplers import FlowSampler


#: One generator for the whole batch, or one per sample (the batch's first dimension).
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


class Lap(Protocol):
    def __call__(self, part: str) -> None: ...


def randn(shape: torch.Size, generator: Generators = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Gaussian noise of ``shape`` on ``device``, drawn on each generator's own device. With one generator per
    sample, sample ``i`` draws from ``generator[i]`` alone: its noise, and so its actions, do not depend on the
    batch it is sampled in (batched evaluation gives each episode's actions as if sampled alone)."""
    if generator is None:
        return torch.randn(shape, device=device)
    if isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=generator.device).to(device)
    if len(generator) != shape[0]:
        raise ValueError(f"one generator per sample: got {len(generator)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(shape[1:], generator=g, device=g.device).to(device) for g in generator])


def noise_streams(streams: Mapping[str, Stream], generated: set[str], generator: Generators = None) -> None:
    """Replace the non-conditioning units of the ``generated`` streams by Gaussian noise (``t = 1``);
    every other unit starts at ``t = 0``."""
    for name, s in streams.items():
        if name in generated:
            noise = randn(s.x.shape, generator, s.x.device)
            s.x = torch.where(_units(s.cond, s.x), s.x, noise.to(s.x))
        s.t = torch.where(s.cond, 0.0, 1.0 if name in generated else 0.0).float()


def sample(coupling: Coupling, world_model: WorldModel, action_expert: ActionExpert | None,
           streams: dict[str, Stream], cond: Conditioning, plan: list[Phase],
           sampler: Callable[[str, int], FlowSampler], readouts: set[str] = frozenset(),
           lap: Lap | None = None, cache: bool = True) -> None:
    """Denoise, in place, the streams of ``plan`` (already noised, see :func:`noise_streams`).

    ``sampler(name, steps)`` gives a fresh sampler per stream and phase; ``readouts`` are streams
    predicted, not denoised, at the very last step (X-WAM's depth); ``lap(part)`` charges the time
    since its last call to ``"prefill"`` or ``"denoise"``. ``cache=False`` skips the prefill: every
    step is the coupling's uncached reference pass (``Coupling.uncached_reference``).
    """
    lap = lap or (lambda part: None)
    missing = {n for p in plan for n in p.steps} - set(streams)
    if missing:
        raise ValueError(f"the plan denoises streams {sorted(missing)} that no component produced"
                         f" (have {sorted(streams)}); fix scheduler.phases")
    clean = {n: s.x.clone() for p in plan for n, s in streams.items() if n in p.steps}
    for p, phase in enumerate(plan):
        active = set(phase.steps)
        samplers = {n: sampler(n, k) for n, k in phase.steps.items()}
        prefilled = coupling.prefill(world_model, action_expert, streams, cond, active) if cache else None
        lap("prefill")
        for i in range(phase.length):
            live = {n for n in active if i < phase.steps[n]}
            for n in active:
                s = streams[n]
                s.t = torch.where(s.cond, 0.0, samplers[n].t if n in live else 0.0).float()
            last = p == len(plan) - 1 and i == phase.length - 1
            v = coupling.step(world_model, action_expert, streams, cond, live | readouts if last else live, prefilled)
            for n in readouts & set(v) if last else ():
                streams[n].x = v[n]
            for n in live:
                s = streams[n]
                if n not in v and bool(s.cond.all()):  # only clean units (e.g. X-WAM's s_0 alone): nothing to denoise
                    continue
                s.x = torch.where(_units(s.cond, s.x), clean[n], samplers[n].step(v[n], s.x))
        for n in active:
            streams[n].t = torch.zeros_like(streams[n].t)
        lap("denoise")


def _units(cond: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The ``[B, U]`` conditioning mask broadcast over the unit's remaining dimensions."""
    return cond.reshape(*cond.shape, *([1] * (x.ndim - 2)))
